"""Memorization-aware training (MAT) against spurious correlations (Bayat et al., ICLR 2025)."""
