"""`twinguard dashboard`: a live page for the security operator, served with the standard library."""
