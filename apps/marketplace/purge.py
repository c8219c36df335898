"""The purge job (filled in below)."""
