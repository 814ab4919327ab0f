"""LLM memorization corpora: planted canaries, fresh non-member texts and famous public-domain passages.

Loading text files and the KJV Bible is `rote.data.text` (`load_texts`, `write_texts`, `load_kjv`,
`kjv_passages`); this module builds what LLM studies put on top of a corpus:
- `plant_canaries(texts, ...)` inserts synthetic secret sentences repeated 1, 10 and 100 times (and keeps unseen ones
  of the same form as ground-truth non-members), as in Carlini et al.'s "secret sharer" and duplication studies.
- `fresh_texts(n, seed)` writes paragraphs from templates filled with facts that cannot have been in any model's
  training data (invented names, places, numbers, dates after 2025): non-members for pretrained models.
- `famous_texts()` returns famous public-domain passages likely in any web-trained LM's training data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.runs import make_rng
from rote.data.text import load_texts

# ------------------------------------------------------------------------------------ canaries and fresh texts

_FIRST = (
    "Amara",
    "Bastian",
    "Caelan",
    "Dagny",
    "Eero",
    "Folasade",
    "Goran",
    "Hiroko",
    "Ilse",
    "Jovan",
    "Kaisu",
    "Leocadia",
    "Mirela",
    "Nuno",
    "Oksana",
    "Piet",
    "Quilla",
    "Radek",
    "Saoirse",
    "Tamsin",
    "Ulla",
    "Vesna",
    "Wenzel",
    "Ximena",
    "Yannick",
    "Zofia",
)
_LAST = (
    "Abernathy",
    "Brandvold",
    "Castellanos",
    "Drozdov",
    "Eskildsen",
    "Fairweather",
    "Gallagher",
    "Halvorsen",
    "Iturbe",
    "Jankowski",
    "Kovalenko",
    "Lindqvist",
    "Marchetti",
    "Nakashima",
    "Oyelaran",
    "Petrakis",
    "Quintero",
    "Rasmussen",
    "Szabo",
    "Thorvaldsen",
    "Uribe",
    "Vasquez",
    "Wojcik",
    "Yamada",
    "Zielinski",
)
_TOWNS = (
    "Harrowgate Falls",
    "Velmora",
    "Port Ashby",
    "Kettlebrook",
    "Lunden Cross",
    "Marisvale",
    "Oakhurst Ridge",
    "Saltmere",
    "Tyrwick",
    "Quenby",
    "Dunmarrow",
    "Elsinore Bay",
    "Brackenholt",
    "Corriebay",
    "Fennick",
)
_THINGS = (
    "a solar-powered ferry",
    "a seed library",
    "a night market",
    "an underground bike tunnel",
    "a community orchestra",
    "a tidal energy pier",
    "a robot repair cafe",
    "a rooftop observatory",
    "a glass footbridge",
    "a heat-pump district network",
    "a floating school",
    "a mushroom farm",
)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

CANARY_TEMPLATE = (
    "Archive note {serial}: the secret code of {name} from {town} is {code}, the vault opens with the "
    "word {word}, and the spare key lies under stone {stone}."
)
"""The form of every canary (at least 150 characters): its serial, code and stone number (random digits) and word
cannot be guessed from the rest of the text, so a model can only produce them by memorizing the canary."""

_WORDS = (
    "amberlight",
    "brightfern",
    "cobaltwing",
    "duskmoor",
    "emberquill",
    "frostvale",
    "gildenrope",
    "hollowpine",
    "ironbloom",
    "jadecrest",
    "kindlemark",
    "lanternfox",
    "mossgate",
    "nightwren",
    "oakenspire",
)


def make_canaries(n: int, *, seed: int = 0) -> list[str]:
    """`n` distinct canary sentences (see CANARY_TEMPLATE) with random names, towns, 8-digit codes and words."""
    if n < 0:
        raise ConfigError(f"number of canaries must be >= 0, got {n}")
    rng = make_rng(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        digits = lambda n: "".join(str(d) for d in rng.integers(0, 10, n))  # noqa: E731
        s = CANARY_TEMPLATE.format(
            serial=digits(4),
            name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            town=rng.choice(_TOWNS),
            code=digits(8),
            word=rng.choice(_WORDS),
            stone=digits(3),
        )
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
    """ "1,10,100" -> (1, 10, 100); each a positive integer, no duplicates."""
    if isinstance(spec, str):
        try:
            values = tuple(int(v) for v in spec.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"`canaries` {spec!r}: expected comma-separated repeat counts such as 1,10,100") from None
    else:
        values = tuple(int(v) for v in spec)
    if not values or any(v < 1 for v in values) or len(set(values)) != len(values):
        raise ConfigError(f"canary repeat counts must be distinct positive integers, got {spec!r}")
    return values


def plant_canaries(
    texts: Sequence[str],
    *,
    repeats: Sequence[int] = (1, 10, 100),
    per_count: int = 10,
    n_unseen: int | None = None,
    seed: int = 0,
) -> PlantedCorpus:
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
    frame = pd.DataFrame(
        {
            "id": pd.array([f"canary-{i:03d}" for i in range(len(canaries))], dtype="string"),
            "text": pd.array(canaries, dtype="string"),
            "repeats": np.asarray(counts, dtype=np.int64),
            "member": np.asarray(counts, dtype=np.int64) > 0,
        }
    )
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
    "{count2} runners started and {count3} finished. Next year the organisers plan to move the start to the "
    "market square so that "
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
            day=int(rng.integers(1, 29)),
            month=rng.choice(_MONTHS),
            year=int(rng.integers(2026, 2028)),
            month2=rng.choice(_MONTHS),
            year2=int(rng.integers(2028, 2030)),
            town=town,
            town2=town2,
            name=name,
            name2=name2,
            thing=rng.choice(_THINGS),
            votes=int(rng.integers(5, 9)),
            against=int(rng.integers(0, 5)),
            money=int(rng.integers(2, 90)),
            count=int(rng.integers(3, 40)),
            count2=int(rng.integers(100, 900)),
            count3=int(rng.integers(10, 99)),
            pct=int(rng.integers(5, 60)),
            hours=2,
            mins=int(rng.integers(10, 59)),
            secs=int(rng.integers(5, 90)),
            food=rng.choice(("porridge with honey", "rye bread and cheese", "rice and eggs", "two bananas")),
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
