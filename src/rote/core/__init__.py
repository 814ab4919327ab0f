"""Domain-free primitives shared by every rote package (imports nothing from rote above it)."""
