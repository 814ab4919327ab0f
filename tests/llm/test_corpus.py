"""Canary planting, fresh non-member texts and the shipped famous passages."""

from __future__ import annotations

from collections import Counter

from rote.llm.corpus import famous_texts, fresh_texts, make_canaries, plant_canaries


def test_planted_canaries_have_exact_counts_and_labels():
    base = [f"verse {i}" for i in range(50)]
    pc = plant_canaries(base, repeats=(1, 10, 100), per_count=3, seed=4)
    counts = Counter(pc.texts)
    assert len(pc.texts) == 50 + 3 * (1 + 10 + 100)
    assert len(pc.canaries) == 12 and pc.canaries["repeats"].tolist() == [1] * 3 + [10] * 3 + [100] * 3 + [0] * 3
    for text, r, member in zip(pc.canaries["text"], pc.canaries["repeats"], pc.canaries["member"]):
        assert counts[text] == r and member == (r > 0)
    assert all(counts[b] == 1 for b in base)
    again = plant_canaries(base, repeats=(1, 10, 100), per_count=3, seed=4)
    assert again.texts == pc.texts  # same seed, same corpus order
    assert plant_canaries(base, repeats=(1, 10, 100), per_count=3, seed=5).texts != pc.texts


def test_canaries_and_fresh_texts_are_distinct_and_seeded():
    c = make_canaries(200, seed=1)
    assert len(set(c)) == 200 and min(len(x) for x in c) >= 150
    assert make_canaries(5, seed=1) == c[:5]
    f = fresh_texts(30, seed=2)
    assert len(set(f)) == 30 and f == fresh_texts(30, seed=2)
    assert all(any(str(y) in t for y in (2026, 2027)) for t in f)  # dated after the models' training


def test_famous_texts_ship_with_rote():
    f = famous_texts()
    assert len(f) == 24 and f["id"].is_unique
    assert set(f["kind"]) == {"scripture", "speech", "constitution", "literature"}
    gettysburg = f.set_index("id").loc["gettysburg-address", "text"]
    assert gettysburg.startswith("Four score and seven years ago our fathers brought forth")
