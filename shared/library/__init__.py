"""The user's music library: folder scans and tags written back into files."""
