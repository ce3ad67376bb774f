"""`twinguard forensics`: everything about one threat, collected into one directory."""
