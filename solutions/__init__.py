"""Reference implementations, one module per chapter (what the checks grade against)."""
