"""Memorization detection in diffusion models from the curvature of the learned log density (Jeon, Kim, No;
ICML 2025)."""
