"""Model backends: one interface (`Backend`) over local Hugging Face models, rote's tiny GPT and OpenAI-compatible
HTTP endpoints. Heavy modules (transformers, the HTTP client) load only when a backend of that kind is opened."""

from rote.llm.backends.base import (
    DEFAULT_REFUSAL_PHRASES,
    Backend,
    Completion,
    TokenScores,
    detect_refusal,
)
from rote.llm.backends.open import open_backend

__all__ = ["Backend", "Completion", "DEFAULT_REFUSAL_PHRASES", "TokenScores", "detect_refusal", "open_backend"]
