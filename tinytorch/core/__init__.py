"""Reference implementations exported from the course modules (generated files)."""
