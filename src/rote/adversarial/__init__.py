"""Adversarial training with de-memorization (DeMem), evaluated by membership inference."""
