"""In-context learning: the transition from memorization (in-weights learning) to generalization (in-context
learning) in small transformers (Nguyen and Reddy, ICLR 2025)."""
