"""In-package fakes for external services, at the wire (local HTTP servers speaking the real formats)."""
