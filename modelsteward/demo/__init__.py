"""The offline demo of the whole loop (`steward demo`, `make demo`)."""
