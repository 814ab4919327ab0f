"""Text corpora: files of texts (JSONL, plain text) checked once where they enter, and the King James Bible.

- `load_texts(path)` reads a JSONL file (one object per line with a "text" field, optional "id") or a plain text
  file (texts separated by blank lines) and checks every text once: non-UTF-8 bytes, empty texts and texts over
  `max_chars` raise `DataError` naming the file and the 1-based line. `write_texts` is its inverse.
- `load_kjv()` reads the King James Bible (public domain) from Debian's `bible-kjv` package (the `bible` command),
  one text per verse with its verse id (e.g. "Ge1:1") as the natural key; `kjv_passages` groups verses into
  training documents.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError, DataError

MAX_CHARS = 100_000
"""Default upper bound on one text's length in characters (a whole novel in one JSON line is almost surely a
formatting mistake, and would make one generation request huge)."""

TEXT_EXTENSIONS: tuple[str, ...] = (".jsonl", ".txt")


def _decode_line(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}, line {lineno}: not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1}); "
            "re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
        ) from None


def _check_text(text: str, path: Path, lineno: int, max_chars: int) -> None:
    if not text.strip():
        raise DataError(f"{path}, line {lineno}: empty text; remove the line or give it some text")
    if len(text) > max_chars:
        raise DataError(
            f"{path}, line {lineno}: text of {len(text):,} characters is over the limit of "
            f"{max_chars:,}; split it into smaller texts or raise `max_chars`"
        )


def load_texts(path: str | os.PathLike, *, field: str = "text", max_chars: int = MAX_CHARS) -> pd.DataFrame:
    """Read and validate a file of texts.

    path: `.jsonl` (one JSON object per line with a string `field`, optional "id"; a line may also be a bare JSON
        string; blank lines are ignored) or `.txt` (texts separated by one or more blank lines; line breaks inside
        a text are kept).
    Returns a DataFrame with columns id (str; the "id" field, else "line-N"), text (str) and line (1-based line
    where the text starts), in file order, plus one column per other JSONL field (strings, numbers or booleans, e.g.
    a group label such as "repeats" or "member"; missing values are NA). Raises DataError naming the file and line
    for non-UTF-8 bytes, invalid JSON, a missing or non-string field, empty texts, texts over `max_chars`
    characters and duplicate ids.
    """
    path = Path(path)
    if max_chars < 1:
        raise ConfigError(f"max_chars must be at least 1, got {max_chars}")
    if not path.is_file():
        raise DataError(f"{path}: file not found; pass a .jsonl or .txt file of texts")
    suffix = path.suffix.lower()
    if suffix not in TEXT_EXTENSIONS:
        raise DataError(
            f'{path}: unknown text file type {suffix or "(none)"}; use .jsonl (one {{"text": ...}} per '
            "line) or .txt (texts separated by blank lines)"
        )
    lines = path.read_bytes().split(b"\n")
    ids: list[str] = []
    texts: list[str] = []
    starts: list[int] = []
    extras: list[dict] = []
    if suffix == ".jsonl":
        for i, raw in enumerate(lines, start=1):
            line = _decode_line(raw, path, i).strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}, line {i}: not valid JSON ({exc.msg} at column {exc.colno}); each line "
                    f'must be one JSON object such as {{"{field}": "..."}}'
                ) from None
            if isinstance(obj, str):
                text, tid = obj, None
            elif isinstance(obj, dict):
                if field not in obj:
                    fields = ", ".join(map(str, obj)) or "-"
                    raise DataError(
                        f'{path}, line {i}: no "{field}" field (fields: {fields}); add it or choose '
                        "the field with `text_field`"
                    )
                text, tid = obj[field], obj.get("id")
                if not isinstance(text, str):
                    raise DataError(f'{path}, line {i}: field "{field}" is {type(text).__name__}, not a string')
            else:
                raise DataError(f"{path}, line {i}: expected a JSON object or string, got {type(obj).__name__}")
            _check_text(text, path, i, max_chars)
            extra = {k: v for k, v in obj.items() if k not in (field, "id")} if isinstance(obj, dict) else {}
            for k, v in extra.items():
                if not (v is None or isinstance(v, (str, int, float, bool))):
                    raise DataError(
                        f'{path}, line {i}: field "{k}" is a {type(v).__name__}; extra fields must be '
                        "strings, numbers or booleans (they become columns, e.g. a group to compare)"
                    )
            extras.append(extra)
            ids.append(f"line-{i}" if tid is None else str(tid))
            texts.append(text)
            starts.append(i)
    else:
        block: list[str] = []
        start = 0
        for i, raw in enumerate(lines + [b""], start=1):
            line = _decode_line(raw, path, i).rstrip("\r")
            if line.strip():
                if not block:
                    start = i
                block.append(line)
            elif block:
                text = "\n".join(block)
                _check_text(text, path, start, max_chars)
                ids.append(f"line-{start}")
                texts.append(text)
                starts.append(start)
                block = []
    if not texts:
        raise DataError(f"{path}: holds no texts; add at least one")
    seen: dict[str, int] = {}
    for tid, line in zip(ids, starts):
        if tid in seen:
            raise DataError(f"{path}, line {line}: id {tid!r} was already used on line {seen[tid]}; ids must be unique")
        seen[tid] = line
    frame = pd.DataFrame(
        {
            "id": pd.array(ids, dtype="string"),
            "text": pd.array(texts, dtype="string"),
            "line": np.asarray(starts, dtype=np.int64),
        }
    )
    if any(extras):
        more = pd.DataFrame(extras, index=frame.index).convert_dtypes()
        more = more.drop(columns=[c for c in more.columns if c in frame.columns])
        frame = pd.concat([frame, more], axis=1)
    return frame


def write_texts(
    path: str | os.PathLike,
    texts: Sequence[str],
    ids: Sequence[str] | None = None,
    extra: dict[str, Sequence] | None = None,
) -> Path:
    """Write texts as JSONL (atomically), one {"id", "text", **extra} object per line; the inverse of load_texts."""
    from rote.core.runs import atomic_write_text

    ids = [f"t{i}" for i in range(len(texts))] if ids is None else list(ids)
    if len(ids) != len(texts):
        raise ConfigError(f"{len(ids)} ids for {len(texts)} texts")
    rows = []
    for i, (tid, text) in enumerate(zip(ids, texts)):
        obj = {"id": str(tid), "text": str(text)}
        for k, v in (extra or {}).items():
            value = v[i]
            obj[k] = value.item() if isinstance(value, np.generic) else value
        rows.append(json.dumps(obj, ensure_ascii=False))
    return atomic_write_text(path, "\n".join(rows) + "\n")


# ---------------------------------------------------------------------------------------------- KJV

KJV_FILES: tuple[str, ...] = ("/usr/share/bible-kjv/kjv.txt", "/usr/share/bible-kjv/bible.txt")
"""Plain-text KJV files (one verse per line, "Ge1:1 In the beginning ...") used when the `bible` command is
missing; also any file passed to `load_kjv(path=...)`."""

KJV_RANGE = "Gen1:1-Rev22:21"
_KJV_MISSING = (
    "the King James Bible is not installed: install Debian's bible-kjv package "
    "(`apt-get install -y bible-kjv`, which provides the `bible` command), or pass a text file of "
    "verses (`corpus` FILE)"
)


def _parse_verses(text: str, source: str) -> pd.DataFrame:
    verse_ids, verses = [], []
    for i, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        ref, _, body = line.partition(" ")
        if not body.strip() or ":" not in ref:
            raise DataError(f"{source}, line {i}: expected 'Book1:1 verse text', got {line[:60]!r}")
        verse_ids.append(ref)
        verses.append(body.strip())
    if not verses:
        raise DataError(f"{source}: holds no verses")
    return pd.DataFrame({"id": pd.array(verse_ids, dtype="string"), "text": pd.array(verses, dtype="string")})


def load_kjv(*, verse_range: str = KJV_RANGE, path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The King James Bible (public domain), one row per verse: columns id ("Ge1:1") and text.

    Read with the `bible` command of Debian's bible-kjv package (`bible -f RANGE`), else from one of `KJV_FILES`,
    else from `path`. 31,102 verses for the default range. DataError with the install command when none exists.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"{p}: file not found; {_KJV_MISSING}")
        return _parse_verses(_decode_line(p.read_bytes(), p, 1), str(p))
    exe = shutil.which("bible")
    if exe is not None:
        try:
            done = subprocess.run([exe, "-f", verse_range], capture_output=True, check=True, timeout=120)
        except (subprocess.SubprocessError, OSError) as exc:
            raise DataError(f"`bible -f {verse_range}` failed ({exc}); check the range, e.g. {KJV_RANGE}") from None
        return _parse_verses(done.stdout.decode("utf-8", errors="replace"), f"bible -f {verse_range}")
    for candidate in KJV_FILES:
        if Path(candidate).is_file():
            return load_kjv(path=candidate)
    raise DataError(_KJV_MISSING)


def kjv_passages(verses: pd.DataFrame, verses_per_text: int = 8) -> pd.DataFrame:
    """Group consecutive verses into passages (one training document each): columns id ("Ge1:1-Ge1:8"), text.

    Verses are joined with a space so a passage reads as running text; the last passage may be shorter.
    """
    if verses_per_text < 1:
        raise ConfigError(f"verses_per_text must be at least 1, got {verses_per_text}")
    ids, texts = [], []
    vid, vtext = verses["id"].tolist(), verses["text"].tolist()
    for s in range(0, len(vtext), verses_per_text):
        e = min(s + verses_per_text, len(vtext))
        ids.append(f"{vid[s]}-{vid[e - 1]}" if e - s > 1 else vid[s])
        texts.append(" ".join(vtext[s:e]))
    return pd.DataFrame({"id": pd.array(ids, dtype="string"), "text": pd.array(texts, dtype="string")})
