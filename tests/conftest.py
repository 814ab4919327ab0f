"""Test-suite settings shared by every package's tests."""

from hypothesis import settings

# CI must be reproducible: hypothesis draws the same examples on every run (a failure found once is found again).
settings.register_profile("rote", derandomize=True, deadline=None)
settings.load_profile("rote")
