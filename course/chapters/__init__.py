"""Chapter sources: one jupytext percent-format file per chapter (NN_slug.py)."""
