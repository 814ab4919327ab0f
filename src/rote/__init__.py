"""rote: measure, detect, localize and mitigate memorization in machine-learning models."""

__version__ = "0.1.0"
