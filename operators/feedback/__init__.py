"""Analyst feedback: verdicts on threats that suppress a detector for a scope, or re-learn a baseline."""
