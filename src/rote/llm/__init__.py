"""rote.llm: verbatim memorization, extraction and membership inference for language models.

Model backends (`open_backend`, `Backend`, `TokenScores`, `Completion`) are re-exported here; protocols and the tiny
GPT live in their own modules (`rote.llm.tinygpt`, ...). Importing this package loads neither torch nor transformers.
"""

from rote.llm.backends import (
    DEFAULT_REFUSAL_PHRASES,
    Backend,
    Completion,
    TokenScores,
    detect_refusal,
    open_backend,
)

__all__ = ["Backend", "Completion", "DEFAULT_REFUSAL_PHRASES", "TokenScores", "detect_refusal", "open_backend"]
