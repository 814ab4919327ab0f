"""The errors rote raises on bad input.

Every `RoteError` is the user's to fix: the CLI prints its message on one line and exits with code 2.
Any other exception is a bug in rote and exits with code 1.
"""

from __future__ import annotations


class RoteError(Exception):
    """Bad input or configuration; the message says what is wrong, where, and how to fix it."""

    exit_code = 2


class SchemaError(RoteError):
    """A table does not fit its schema (missing or extra columns, wrong column types, unknown target)."""


class DataError(RoteError):
    """A file cannot be read, or its values are unusable (text in a numeric column, missing cells, empty table)."""


class ConfigError(RoteError):
    """Options that contradict each other or are out of range."""


class BackendError(RoteError):
    """A compute backend or model cannot be reached or used (for example `--device cuda` without a GPU)."""
