"""Peer baselines written the way their frameworks' docs teach: per-event Python state and scoring.

Modules here import only the standard library, numpy, xgboost and the framework itself, so the
Quix Streams peer can run from its own virtualenv (quixstreams pins an older confluent-kafka).
"""
