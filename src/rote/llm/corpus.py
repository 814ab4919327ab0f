"""Text corpora for LLM memorization studies: loading with validation, the KJV Bible, planted canaries and fresh
non-member texts.

- `load_texts(path)` reads a JSONL file (one object per line with a "text" field, optional "id") or a plain text
  file (texts separated by blank lines) and checks every text once: non-UTF-8 bytes, empty texts and texts over
  `max_chars` raise `DataError` naming the file and the 1-based line.
- `load_kjv()` reads the King James Bible from Debian's `bible-kjv` package (the `bible` command), one text per
  verse with its verse id (e.g. "Ge1:1") as the natural key.
- `plant_canaries(texts, ...)` inserts synthetic secret sentences repeated 1, 10 and 100 times (and keeps unseen ones
  of the same form as ground-truth non-members), as in Carlini et al.'s "secret sharer" and duplication studies.
- `fresh_texts(n, seed)` writes paragraphs from templates filled with facts that cannot have been in any model's
  training data (invented names, places, numbers, dates after 2025): non-members for pretrained models.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError, DataError
from rote.core.runs import make_rng

MAX_CHARS = 100_000
"""Default upper bound on one text's length in characters (a whole novel in one JSON line is almost surely a
formatting mistake, and would make one generation request huge)."""

TEXT_EXTENSIONS: tuple[str, ...] = (".jsonl", ".txt")


def _decode_line(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}, line {lineno}: not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1}); "
                        "re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)") from None


def _check_text(text: str, path: Path, lineno: int, max_chars: int) -> None:
    if not text.strip():
        raise DataError(f"{path}, line {lineno}: empty text; remove the line or give it some text")
    if len(text) > max_chars:
        raise DataError(f"{path}, line {lineno}: text of {len(text):,} characters is over the limit of "
                        f"{max_chars:,}; split it into smaller texts or raise --max-chars")


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
        raise DataError(f"{path}: unknown text file type {suffix or '(none)'}; use .jsonl (one {{\"text\": ...}} per "
                        "line) or .txt (texts separated by blank lines)")
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
                raise DataError(f"{path}, line {i}: not valid JSON ({exc.msg} at column {exc.colno}); each line "
                                f"must be one JSON object such as {{\"{field}\": \"...\"}}") from None
            if isinstance(obj, str):
                text, tid = obj, None
            elif isinstance(obj, dict):
                if field not in obj:
                    fields = ", ".join(map(str, obj)) or "-"
                    raise DataError(f"{path}, line {i}: no \"{field}\" field (fields: {fields}); add it or choose "
                                    "the field with --text-field")
                text, tid = obj[field], obj.get("id")
                if not isinstance(text, str):
                    raise DataError(f"{path}, line {i}: field \"{field}\" is {type(text).__name__}, not a string")
            else:
                raise DataError(f"{path}, line {i}: expected a JSON object or string, got {type(obj).__name__}")
            _check_text(text, path, i, max_chars)
            extra = {k: v for k, v in obj.items() if k not in (field, "id")} if isinstance(obj, dict) else {}
            for k, v in extra.items():
                if not (v is None or isinstance(v, (str, int, float, bool))):
                    raise DataError(f"{path}, line {i}: field \"{k}\" is a {type(v).__name__}; extra fields must be "
                                    "strings, numbers or booleans (they become columns, e.g. a group to compare)")
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
    frame = pd.DataFrame({"id": pd.array(ids, dtype="string"), "text": pd.array(texts, dtype="string"),
                          "line": np.asarray(starts, dtype=np.int64)})
    if any(extras):
        more = pd.DataFrame(extras, index=frame.index).convert_dtypes()
        more = more.drop(columns=[c for c in more.columns if c in frame.columns])
        frame = pd.concat([frame, more], axis=1)
    return frame


def write_texts(path: str | os.PathLike, texts: Sequence[str], ids: Sequence[str] | None = None,
                extra: dict[str, Sequence] | None = None) -> Path:
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
_KJV_MISSING = ("the King James Bible is not installed: install Debian's bible-kjv package "
                "(`apt-get install -y bible-kjv`, which provides the `bible` command), or pass a text file of "
                "verses (`--corpus FILE`)")


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


# ------------------------------------------------------------------------------------ canaries and fresh texts

_FIRST = ("Amara", "Bastian", "Caelan", "Dagny", "Eero", "Folasade", "Goran", "Hiroko", "Ilse", "Jovan", "Kaisu",
          "Leocadia", "Mirela", "Nuno", "Oksana", "Piet", "Quilla", "Radek", "Saoirse", "Tamsin", "Ulla", "Vesna",
          "Wenzel", "Ximena", "Yannick", "Zofia")
_LAST = ("Abernathy", "Brandvold", "Castellanos", "Drozdov", "Eskildsen", "Fairweather", "Gallagher", "Halvorsen",
         "Iturbe", "Jankowski", "Kovalenko", "Lindqvist", "Marchetti", "Nakashima", "Oyelaran", "Petrakis",
         "Quintero", "Rasmussen", "Szabo", "Thorvaldsen", "Uribe", "Vasquez", "Wojcik", "Yamada", "Zielinski")
_TOWNS = ("Harrowgate Falls", "Velmora", "Port Ashby", "Kettlebrook", "Lunden Cross", "Marisvale", "Oakhurst Ridge",
          "Saltmere", "Tyrwick", "Quenby", "Dunmarrow", "Elsinore Bay", "Brackenholt", "Corriebay", "Fennick")
_THINGS = ("a solar-powered ferry", "a seed library", "a night market", "an underground bike tunnel",
           "a community orchestra", "a tidal energy pier", "a robot repair cafe", "a rooftop observatory",
           "a glass footbridge", "a heat-pump district network", "a floating school", "a mushroom farm")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")

CANARY_TEMPLATE = ("Archive note {serial}: the secret code of {name} from {town} is {code}, the vault opens with the "
                   "word {word}, and the spare key lies under stone {stone}.")
"""The form of every canary (at least 150 characters): its serial, code and stone number (random digits) and word
cannot be guessed from the rest of the text, so a model can only produce them by memorizing the canary."""

_WORDS = ("amberlight", "brightfern", "cobaltwing", "duskmoor", "emberquill", "frostvale", "gildenrope",
          "hollowpine", "ironbloom", "jadecrest", "kindlemark", "lanternfox", "mossgate", "nightwren", "oakenspire")


def make_canaries(n: int, *, seed: int = 0) -> list[str]:
    """`n` distinct canary sentences (see CANARY_TEMPLATE) with random names, towns, 8-digit codes and words."""
    if n < 0:
        raise ConfigError(f"number of canaries must be >= 0, got {n}")
    rng = make_rng(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        digits = lambda n: "".join(str(d) for d in rng.integers(0, 10, n))  # noqa: E731
        s = CANARY_TEMPLATE.format(serial=digits(4), name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                                   town=rng.choice(_TOWNS), code=digits(8), word=rng.choice(_WORDS),
                                   stone=digits(3))
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


@dataclasses.dataclass(frozen=True)
class PlantedCorpus:
    """A training corpus with planted canaries and their ground truth.

    texts: the training documents in training order (corpus texts and canary copies shuffled together).
    canaries: one row per canary: id, text, repeats (copies in `texts`; 0 = unseen, a non-member of the same
        form), member (repeats > 0).
    """

    texts: list[str]
    canaries: pd.DataFrame


def parse_repeats(spec: str | Sequence[int]) -> tuple[int, ...]:
    """"1,10,100" -> (1, 10, 100); each a positive integer, no duplicates."""
    if isinstance(spec, str):
        try:
            values = tuple(int(v) for v in spec.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"--canaries {spec!r}: expected comma-separated repeat counts such as 1,10,100") from None
    else:
        values = tuple(int(v) for v in spec)
    if not values or any(v < 1 for v in values) or len(set(values)) != len(values):
        raise ConfigError(f"canary repeat counts must be distinct positive integers, got {spec!r}")
    return values


def plant_canaries(texts: Sequence[str], *, repeats: Sequence[int] = (1, 10, 100), per_count: int = 10,
                   n_unseen: int | None = None, seed: int = 0) -> PlantedCorpus:
    """Plant `per_count` canaries for each repeat count in `repeats` (each copy a separate document) into `texts`.

    n_unseen: canaries of the same form never put in the corpus (non-members); default `per_count`.
    The copies and the corpus texts are shuffled together with `seed`. Returns a `PlantedCorpus`.
    """
    repeats = parse_repeats(repeats)
    if per_count < 1:
        raise ConfigError(f"per_count must be at least 1, got {per_count}")
    n_unseen = per_count if n_unseen is None else n_unseen
    canaries = make_canaries(per_count * len(repeats) + n_unseen, seed=seed)
    counts = [r for r in repeats for _ in range(per_count)] + [0] * n_unseen
    docs = list(texts)
    for text, r in zip(canaries, counts):
        docs.extend([text] * r)
    order = make_rng(seed + 1).permutation(len(docs))
    frame = pd.DataFrame({"id": pd.array([f"canary-{i:03d}" for i in range(len(canaries))], dtype="string"),
                          "text": pd.array(canaries, dtype="string"),
                          "repeats": np.asarray(counts, dtype=np.int64),
                          "member": np.asarray(counts, dtype=np.int64) > 0})
    return PlantedCorpus(texts=[docs[i] for i in order], canaries=frame)


FRESH_TEMPLATES: tuple[str, ...] = (
    "On {day} {month} {year}, the town council of {town} voted {votes} to {against} to build {thing} beside the old "
    "harbour. Mayor {name} said the project, budgeted at {money} million, would open by {month2} {year2}. Residents "
    "who spoke at the meeting asked for {count} more benches, a later closing time and free entry for pupils. The "
    "engineer in charge, {name2}, promised that the first stage would be finished before the spring floods and that "
    "local firms would win at least {pct} percent of the contracts.",
    "{name} of {town} won the {year} {town2} marathon in {hours} hours {mins} minutes, beating the course record by "
    "{secs} seconds. The winner trained for {count} weeks on the coastal path and ate {food} before every long "
    "run. The coach, {name2}, said the weather on {day} {month} was cool and still, ideal for a fast race. "
    "{count2} runners started and {count3} finished. Next year the organisers plan to move the start to the market square so that "
    "the route passes {thing}.",
    "Scientists at the {town} Institute reported on {day} {month} {year} that {thing} cut the district's energy use "
    "by {pct} percent over {count} months. The study, led by {name} and {name2}, followed {count2} households and "
    "found that bills fell by {money} thousand in total. The team will present the results in {town2} in {month2} "
    "{year2}, and hopes that at least {count3} other towns will copy the design within five years.",
)


def fresh_texts(n: int, *, seed: int = 0) -> list[str]:
    """`n` distinct paragraphs (about 80-100 words each) from FRESH_TEMPLATES filled with invented names, towns,
    numbers and dates in 2026-2028: texts no model trained before 2026 can have seen (non-members)."""
    if n < 0:
        raise ConfigError(f"number of fresh texts must be >= 0, got {n}")
    rng = make_rng(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        template = FRESH_TEMPLATES[len(out) % len(FRESH_TEMPLATES)]
        town, town2 = rng.choice(_TOWNS, 2, replace=False)
        name, name2 = (f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" for _ in range(2))
        text = template.format(
            day=int(rng.integers(1, 29)), month=rng.choice(_MONTHS), year=int(rng.integers(2026, 2028)),
            month2=rng.choice(_MONTHS), year2=int(rng.integers(2028, 2030)), town=town, town2=town2, name=name,
            name2=name2, thing=rng.choice(_THINGS), votes=int(rng.integers(5, 9)), against=int(rng.integers(0, 5)),
            money=int(rng.integers(2, 90)), count=int(rng.integers(3, 40)), count2=int(rng.integers(100, 900)),
            count3=int(rng.integers(10, 99)), pct=int(rng.integers(5, 60)), hours=2, mins=int(rng.integers(10, 59)),
            secs=int(rng.integers(5, 90)), food=rng.choice(("porridge with honey", "rye bread and cheese",
                                                             "rice and eggs", "two bananas")),
        )
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


FAMOUS_TEXTS = Path(__file__).parent / "data" / "famous.jsonl"
"""Famous public-domain passages (scripture, speeches, constitutions, classic novels) shipped with rote: likely in
the training data of any web-trained LM. See `famous_texts()`."""


def famous_texts() -> pd.DataFrame:
    """The shipped famous public-domain passages: columns id, text, line (see FAMOUS_TEXTS)."""
    return load_texts(FAMOUS_TEXTS)
