"""The archive to learn from: closed windows, threats and feedback as partitioned Parquet
(`twinguard archive`), and retraining from it (`twinguard train --from-archive`)."""
