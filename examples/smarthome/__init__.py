"""A small home-automation service (the asyncfix example)."""
