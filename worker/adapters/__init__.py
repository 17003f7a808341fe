"""Adapters: the provider adapters behind one contract, the HTTP transport, and the store."""
