"""The nearest-neighbour kernel (`rote.core.neighbors`) against brute force written from the definitions.

The reference implementations below compute every (query, reference) distance in a plain double loop in float64
from the definitions of the three presets (reference doc `tabular-and-sharpness.md` sections 1.1-1.2 and the
module docstring); they never call the kernel's helpers. Indices are checked by the distance they achieve, not
by equality, because among reference rows at equal distance the reported index is unspecified.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rote.core.errors import BackendError, ConfigError
from rote.core.neighbors import DISTANCES, GowerDistance, L2Distance, MixedMatrix, Neighbors, knn

SETTINGS = dict(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RTOL, ATOL = 1e-9, 1e-12
# (distance, kernel) pairs: the compiled scan serves `tabcutmix` and `l2` on the CPU, torch every distance
PATHS = [("gower", "torch"), ("l2", "torch"), ("l2", "compiled"), ("tabcutmix", "torch"), ("tabcutmix", "compiled")]

# ---------------------------------------------------------------------------------------------- brute force


def brute_tabcutmix(query: MixedMatrix, ref: MixedMatrix) -> np.ndarray:
    """TabCutMix code's distance: raw Euclidean on numerics, min-max rescaled over all reference rows per query
    (zero range -> 0, sklearn MinMaxScaler), plus categorical mismatches, divided by M."""
    p, q = query.numeric.shape[1], query.categorical.shape[1]
    m = p + q
    out = np.empty((query.n_rows, ref.n_rows))
    for i in range(query.n_rows):
        e = []
        for j in range(ref.n_rows):
            s = 0.0
            for c in range(p):
                diff = float(query.numeric[i, c]) - float(ref.numeric[j, c])
                s += diff * diff
            e.append(math.sqrt(s))
        lo, hi = min(e), max(e)
        for j in range(ref.n_rows):
            mm = 0.0 if hi == lo else (e[j] - lo) / (hi - lo)
            mism = 0
            for c in range(q):
                a, b = int(query.categorical[i, c]), int(ref.categorical[j, c])
                mism += (a < 0) or (a != b)  # an unseen (-1) query code matches nothing
            out[i, j] = (mm + mism) / m
    return out


def brute_gower(query: MixedMatrix, ref: MixedMatrix) -> np.ndarray:
    """Mean over M columns of min(|a-b|/range, 1) (range from the reference; zero range -> 1[a != b]) and
    1[a != b] for categoricals."""
    p, q = query.numeric.shape[1], query.categorical.shape[1]
    m = p + q
    ranges = [float(ref.numeric[:, c].max() - ref.numeric[:, c].min()) for c in range(p)]
    out = np.empty((query.n_rows, ref.n_rows))
    for i in range(query.n_rows):
        for j in range(ref.n_rows):
            s = 0.0
            for c in range(p):
                a, b = float(query.numeric[i, c]), float(ref.numeric[j, c])
                if ranges[c] == 0:
                    s += float(a != b)
                else:
                    s += min(abs(a - b) / ranges[c], 1.0)
            for c in range(q):
                a, b = int(query.categorical[i, c]), int(ref.categorical[j, c])
                s += float(a < 0 or a != b)
            out[i, j] = s / m
    return out


def brute_l2(query: MixedMatrix, ref: MixedMatrix) -> np.ndarray:
    """Euclidean on numerics standardized by the reference mean/std (ddof 0, 1 where 0) plus one-hot squared
    differences: 2 per differing pair of known codes, 1 for a query code the reference never has."""
    p, q = query.numeric.shape[1], query.categorical.shape[1]
    n = ref.n_rows
    mean = [sum(float(v) for v in ref.numeric[:, c]) / n for c in range(p)]
    std = []
    for c in range(p):
        col = [float(v) for v in ref.numeric[:, c]]
        if max(col) == min(col):  # a constant column has standard deviation exactly 0 -> scale 1
            std.append(1.0)
            continue
        var = sum((v - mean[c]) ** 2 for v in col) / n
        std.append(math.sqrt(var))
    out = np.empty((query.n_rows, ref.n_rows))
    for i in range(query.n_rows):
        for j in range(ref.n_rows):
            s = 0.0
            for c in range(p):
                za = (float(query.numeric[i, c]) - mean[c]) / std[c]
                zb = (float(ref.numeric[j, c]) - mean[c]) / std[c]
                s += (za - zb) ** 2
            for c in range(q):
                a, b = int(query.categorical[i, c]), int(ref.categorical[j, c])
                if a < 0:
                    s += 1.0
                elif a != b:
                    s += 2.0
            out[i, j] = math.sqrt(s)
    return out


BRUTE = {"tabcutmix": brute_tabcutmix, "gower": brute_gower, "l2": brute_l2}


def check_neighbors(nb: Neighbors, brute: np.ndarray, k: int, *, rtol: float = RTOL, atol: float = ATOL) -> None:
    """nb matches the brute-force distance matrix: sorted distances equal, indices achieve them, padding."""
    n_q, n_ref = brute.shape
    assert nb.indices.shape == (n_q, k) and nb.distances.shape == (n_q, k)
    assert nb.indices.dtype == np.int64 and nb.distances.dtype == np.float64
    m = min(k, n_ref)
    for i in range(n_q):
        expected = np.sort(brute[i])[:m]
        np.testing.assert_allclose(
            nb.distances[i, :m], expected, rtol=rtol, atol=atol, err_msg=f"query row {i}: distances"
        )
        idx = nb.indices[i, :m]
        assert ((idx >= 0) & (idx < n_ref)).all(), f"query row {i}: indices {idx} out of range"
        assert len(set(idx.tolist())) == m, f"query row {i}: repeated index in {idx}"
        np.testing.assert_allclose(
            brute[i, idx],
            nb.distances[i, :m],
            rtol=rtol,
            atol=atol,
            err_msg=f"query row {i}: reported indices {idx} do not achieve the distances",
        )
        assert (np.diff(nb.distances[i, :m]) >= 0).all(), f"query row {i}: not sorted"
        assert (nb.indices[i, m:] == -1).all() and np.isinf(nb.distances[i, m:]).all()


# ---------------------------------------------------------------------------------------------- generators


def _numeric_column(rng: np.random.Generator, kind: str, n: int, const: float) -> np.ndarray:
    if kind == "small_int":  # many ties and duplicate rows
        return rng.integers(-3, 4, n).astype(np.float64)
    if kind == "int":
        return rng.integers(-1000, 1001, n).astype(np.float64)
    if kind == "float":
        return rng.uniform(-1000.0, 1000.0, n)
    if kind == "const":  # zero range in the reference
        return np.full(n, const)
    raise AssertionError(kind)


@st.composite
def mixed_case(draw, max_ref: int = 40, max_query: int = 30, scale: float = 1.0):
    """(query, reference, k): random mixed tables with frequent ties, duplicates and copied rows."""
    p = draw(st.integers(0, 4))
    q = draw(st.integers(0 if p else 1, 4))
    n_ref = draw(st.integers(1, max_ref))
    n_q = draw(st.integers(1, max_query))
    n_cats = tuple(draw(st.lists(st.integers(1, 4), min_size=q, max_size=q)))
    kinds = draw(st.lists(st.sampled_from(["small_int", "int", "float", "const"]), min_size=p, max_size=p))
    unseen = draw(st.booleans())
    copies = draw(st.sampled_from(["none", "full", "numeric", "both"]))
    k = draw(st.sampled_from([1, 2, 3]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    consts = rng.uniform(-10, 10, p)

    def numeric(n: int, is_query: bool) -> np.ndarray:
        cols = []
        for c, kind in enumerate(kinds):
            col = _numeric_column(rng, kind, n, consts[c])
            if is_query and kind == "const":  # sometimes off the constant: a 1[a != b] term
                col = np.where(rng.random(n) < 0.5, col, col + rng.integers(1, 3, n))
            cols.append(col * scale)
        return np.column_stack(cols) if cols else np.zeros((n, 0))

    ref_num = numeric(n_ref, False)
    ref_cat = np.column_stack([rng.integers(0, kc, n_ref) for kc in n_cats]) if q else np.zeros((n_ref, 0), np.int64)
    if n_ref > 1 and rng.random() < 0.5:  # plant duplicate reference rows
        dup = rng.integers(0, n_ref, rng.integers(1, n_ref))
        tgt = rng.integers(0, n_ref, dup.size)
        ref_num[tgt], ref_cat[tgt] = ref_num[dup], ref_cat[dup]
    q_num = numeric(n_q, True)
    low = -1 if unseen else 0
    q_cat = np.column_stack([rng.integers(low, kc, n_q) for kc in n_cats]) if q else np.zeros((n_q, 0), np.int64)
    if copies != "none":
        src = rng.integers(0, n_ref, n_q)
        pick = rng.random(n_q) < 0.5
        full = pick & ((rng.random(n_q) < 0.5) if copies == "both" else np.full(n_q, copies == "full"))
        num_only = pick & ~full
        q_num[pick] = ref_num[src[pick]]
        q_cat[full] = ref_cat[src[full]]
        q_cat[num_only] = (
            np.column_stack([rng.integers(low, kc, int(num_only.sum())) for kc in n_cats]) if q else q_cat[num_only]
        )
    ref = MixedMatrix(ref_num, ref_cat, n_cats)
    query = MixedMatrix(q_num, q_cat, n_cats)
    return query, ref, k


# ------------------------------------------------------------------------------------------- 1. presets vs brute force


@pytest.mark.parametrize("name,kernel", PATHS)
@settings(**SETTINGS)
@given(case=mixed_case(), dedupe=st.booleans())
def test_preset_matches_brute_force(name, kernel, case, dedupe):
    query, ref, k = case
    nb = knn(query, ref, k=k, distance=name, dedupe=dedupe, kernel=kernel)
    check_neighbors(nb, BRUTE[name](query, ref), k)


@pytest.mark.parametrize("name,kernel", PATHS)
@settings(**{**SETTINGS, "max_examples": 25})
@given(case=mixed_case(max_ref=3, max_query=10))
def test_fewer_reference_rows_than_k(name, kernel, case):
    query, ref, _ = case
    k = 3
    nb = knn(query, ref, k=k, distance=name, kernel=kernel)
    check_neighbors(nb, BRUTE[name](query, ref), k)
    if ref.n_rows < k:
        assert (nb.indices[:, ref.n_rows :] == -1).all()
        assert np.isinf(nb.distances[:, ref.n_rows :]).all()


def test_reference_smaller_than_k_explicit():
    ref = MixedMatrix(np.array([[0.0], [2.0]]), np.zeros((2, 0), np.int64), ())
    query = MixedMatrix(np.array([[0.5]]), np.zeros((1, 0), np.int64), ())
    nb = knn(query, ref, k=3, distance="gower")
    # range 2: |0.5-0|/2 = 0.25, |0.5-2|/2 = 0.75
    np.testing.assert_array_equal(nb.indices, [[0, 1, -1]])
    np.testing.assert_allclose(nb.distances[0, :2], [0.25, 0.75], rtol=0, atol=1e-15)
    assert np.isinf(nb.distances[0, 2])


@pytest.mark.parametrize("name,kernel", PATHS)
@settings(**{**SETTINGS, "max_examples": 20})
@given(case=mixed_case(max_ref=30, max_query=15, scale=1500.0))
def test_preset_adult_like_scale(name, kernel, case):
    """Values up to 1.5e6 (like Adult's fnlwgt); the tabcutmix min/max carry float64 screen rounding."""
    query, ref, k = case
    nb = knn(query, ref, k=k, distance=name, kernel=kernel)
    check_neighbors(nb, BRUTE[name](query, ref), k, rtol=1e-7, atol=1e-12)


def test_tabcutmix_minimum_from_a_row_outside_the_candidates():
    """The per-query minimum of e is 0 when a reference row equals the query numerically, even when that row is
    far behind on categorical mismatches (so it is not among the k + REFINE_SLACK re-scored candidates)."""
    rng = np.random.default_rng(28)
    n_ref = 30
    ref_num = np.column_stack([rng.integers(-3, 4, n_ref), rng.uniform(-1000, 1000, n_ref)]).astype(float)
    ref_cat = np.zeros((n_ref, 2), np.int64)
    ref_cat[:15] = 1  # rows 0..14 mismatch their query copies in both categorical columns
    query = MixedMatrix(ref_num[:15].copy(), np.zeros((15, 2), np.int64), (2, 2))  # row i == ref row i numerically
    ref = MixedMatrix(ref_num, ref_cat, (2, 2))
    nb = knn(query, ref, k=2, distance="tabcutmix")
    check_neighbors(nb, brute_tabcutmix(query, ref), 2)


def test_single_category_column_counts_no_mismatch():
    """One categorical column with a single category (sum of n_categories == 1): every pair matches on it, so a
    query equal to a reference row is at distance 0 under every preset."""
    rng = np.random.default_rng(0)
    for n in (33, 50, 120):
        ref = MixedMatrix(rng.uniform(-1000, 1000, (n, 1)), np.zeros((n, 1), np.int64), (1,))
        query = ref.take(np.arange(5))
        for name in sorted(DISTANCES):
            nb = knn(query, ref, k=2, distance=name)
            check_neighbors(nb, BRUTE[name](query, ref), 2)
            assert (nb.distances[:, 0] == 0).all() and (nb.indices[:, 0] == np.arange(5)).all(), (name, n)


def test_l2_constant_column_scales_by_one():
    """A constant reference column has standard deviation 0, so it is scaled by 1 (not by a rounding residue:
    numpy's std of [0.1, 0.1, 0.1] is 1.4e-17)."""
    ref = MixedMatrix(np.array([[0.1, 0.0], [0.1, 1.0], [0.1, 2.0]]), np.zeros((3, 0), np.int64), ())
    query = MixedMatrix(np.array([[1.1, 0.0]]), np.zeros((1, 0), np.int64), ())
    nb = knn(query, ref, k=3, distance="l2")
    # column 0: (1.1 - 0.1) / 1 = 1; column 1: std of [0, 1, 2] = sqrt(2/3), so z-differences 0, sqrt(1.5), sqrt(6)
    np.testing.assert_allclose(nb.distances[0], [1.0, math.sqrt(2.5), math.sqrt(7.0)], rtol=1e-12)
    np.testing.assert_array_equal(nb.indices[0], [0, 1, 2])


# ---------------------------------------------------------------------------------------------- 2. duplicates and ties


@pytest.mark.parametrize("name", sorted(DISTANCES))
@pytest.mark.parametrize("dedupe", [True, False])
def test_duplicate_reference_rows_tie_exactly_at_zero(name, dedupe):
    ref = MixedMatrix(
        np.array([[1.5, -2.25], [1.5, -2.25], [7.0, 3.0], [0.1, 0.2]]),
        np.array([[1, 0], [1, 0], [0, 1], [1, 1]]),
        (2, 2),
    )
    query = MixedMatrix(np.array([[1.5, -2.25]]), np.array([[1, 0]]), (2, 2))
    nb = knn(query, ref, k=2, distance=name, dedupe=dedupe)
    assert nb.distances[0, 0] == 0.0 and nb.distances[0, 1] == 0.0
    assert sorted(nb.indices[0].tolist()) == [0, 1]
    with np.errstate(invalid="ignore"):
        ratio = nb.distances[0, 0] / nb.distances[0, 1]
    assert np.isnan(ratio) and not ratio < 1 / 3  # 0/0: not memorized


@pytest.mark.parametrize("name", sorted(DISTANCES))
@pytest.mark.parametrize("dedupe", [True, False])
def test_query_equal_to_a_unique_reference_row(name, dedupe):
    ref = MixedMatrix(
        np.array([[1.5, -2.25], [1.5, -2.0], [7.0, 3.0], [0.1, 0.2]]),
        np.array([[1, 0], [1, 0], [0, 1], [1, 1]]),
        (2, 2),
    )
    query = MixedMatrix(np.array([[1.5, -2.25]]), np.array([[1, 0]]), (2, 2))
    nb = knn(query, ref, k=2, distance=name, dedupe=dedupe)
    assert nb.distances[0, 0] == 0.0 and nb.indices[0, 0] == 0
    assert nb.distances[0, 1] > 0 and nb.indices[0, 1] == 1


def test_duplicates_expand_to_distinct_original_indices():
    """Three identical reference rows, k=3: all three original indices come back at distance 0."""
    ref = MixedMatrix(np.array([[5.0], [1.0], [5.0], [9.0], [5.0]]), np.array([[0], [0], [0], [1], [0]]), (2,))
    query = MixedMatrix(np.array([[5.0]]), np.array([[0]]), (2,))
    for name in DISTANCES:
        nb = knn(query, ref, k=4, distance=name)
        assert sorted(nb.indices[0, :3].tolist()) == [0, 2, 4]
        assert (nb.distances[0, :3] == 0).all() and nb.distances[0, 3] > 0


# ---------------------------------------------------------------------------------------------- 3. blocking


def _blocking_case(seed: int = 3) -> tuple[MixedMatrix, MixedMatrix]:
    rng = np.random.default_rng(seed)
    n_ref, n_q = 60, 45
    ref_num = np.column_stack([rng.integers(-3, 4, n_ref), rng.uniform(-1000, 1000, n_ref)]).astype(float)
    ref_cat = np.column_stack([rng.integers(0, 2, n_ref), rng.integers(0, 3, n_ref)])
    ref_num[10:15], ref_cat[10:15] = ref_num[0], ref_cat[0]  # duplicates
    q_num = np.column_stack([rng.integers(-3, 4, n_q), rng.uniform(-1000, 1000, n_q)]).astype(float)
    q_cat = np.column_stack([rng.integers(-1, 2, n_q), rng.integers(0, 3, n_q)])
    q_num[:10], q_cat[:10] = ref_num[:10], ref_cat[:10]
    return MixedMatrix(q_num, q_cat, (2, 3)), MixedMatrix(ref_num, ref_cat, (2, 3))


@pytest.mark.parametrize("name,kernel", PATHS)
def test_blocking_does_not_change_results(name, kernel):
    query, ref = _blocking_case()
    k = 3
    base = knn(query, ref, k=k, distance=name, kernel=kernel)
    brute = BRUTE[name](query, ref)
    check_neighbors(base, brute, k)
    variants = [dict(block_rows=b) for b in (1, 2, 3, 7, 13)] + [dict(block_bytes=1), dict(block_bytes=8 * 60 * 4)]
    for kw in variants:
        nb = knn(query, ref, k=k, distance=name, kernel=kernel, **kw)
        np.testing.assert_array_equal(nb.distances, base.distances, err_msg=f"{kw}: distances differ")
        for i in range(query.n_rows):
            for j in range(k):
                tied = np.isclose(brute[i], base.distances[i, j], rtol=1e-9, atol=1e-12).sum() > 1
                if not tied:
                    assert nb.indices[i, j] == base.indices[i, j], f"{kw}: row {i} slot {j}"


def test_progress_reports_every_query_row():
    query, ref = _blocking_case()
    seen: list[int] = []
    knn(query, ref, k=2, distance="gower", block_rows=7, progress=seen.append)
    assert sum(seen) == query.n_rows and len(seen) == math.ceil(query.n_rows / 7)


@pytest.mark.parametrize("name,kernel", PATHS)
def test_chunked_selection_path_matches_brute_force(name, kernel):
    """1500 unique reference rows > 64 * (k + 8): the kernel's chunked top-k selection runs."""
    rng = np.random.default_rng(11)
    n_ref, n_q, k = 1500, 25, 3
    ref_num = np.column_stack([rng.integers(-5, 6, n_ref), rng.uniform(-500, 500, n_ref)]).astype(float)
    ref_cat = np.column_stack([rng.integers(0, 3, n_ref), rng.integers(0, 2, n_ref)])
    q_num = np.column_stack([rng.integers(-5, 6, n_q), rng.uniform(-500, 500, n_q)]).astype(float)
    q_cat = np.column_stack([rng.integers(0, 3, n_q), rng.integers(0, 2, n_q)])
    src = rng.integers(0, n_ref, 8)
    q_num[:8], q_cat[:8] = ref_num[src], ref_cat[src]  # some exact copies, anywhere in the reference
    ref = MixedMatrix(ref_num, ref_cat, (3, 2))
    query = MixedMatrix(q_num, q_cat, (3, 2))
    assert np.unique(np.column_stack([ref_num, ref_cat]), axis=0).shape[0] > 64 * (k + 8)
    nb = knn(query, ref, k=k, distance=name, block_rows=9, kernel=kernel)
    check_neighbors(nb, BRUTE[name](query, ref), k)
    assert (nb.distances[:8, 0] == 0).all()


@pytest.mark.parametrize("width", [5, 64 * 4, 64 * 7 + 13, 2000])
def test_chunked_smallest_and_largest_select_the_extreme_values(width):
    """The chunked selection returns exactly the n smallest / largest values (as a sort does), with ties and a
    ragged tail chunk."""
    from rote.core.neighbors import _smallest, _smallest_and_largest

    keys = torch.as_tensor(np.random.default_rng(width).integers(0, 50, (6, width)).astype(np.float64))
    n = 4
    lo, hi = _smallest_and_largest(keys, n)
    want_lo = torch.sort(keys, 1).values[:, :n]
    want_hi = torch.sort(keys, 1, descending=True).values[:, :n]
    assert torch.equal(torch.sort(torch.gather(keys, 1, lo), 1).values, want_lo)
    assert torch.equal(torch.sort(torch.gather(keys, 1, hi), 1, descending=True).values, want_hi)
    assert torch.equal(torch.sort(torch.gather(keys, 1, _smallest(keys, n)), 1).values, want_lo)
    assert all(len(set(row.tolist())) == n for row in torch.cat([lo, hi], 0))  # distinct columns


def _near_tie_tables(name: str) -> tuple[MixedMatrix, MixedMatrix]:
    """120 reference rows whose numeric values differ by far less than the screen's rounding (float32 for gower
    and l2, float64 for tabcutmix), two far rows that set the range, and queries equal to some of them: the
    screened keys of the 120 rows tie, so the best k + 8 screened candidates are an arbitrary subset."""
    base, step = {"gower": (1000.0, 1e-6), "l2": (1000.0, 1e-6), "tabcutmix": (1e6, 1e-9)}[name]
    n = 120
    rng = np.random.default_rng(5)
    values = base + rng.permutation(n) * step
    num = np.concatenate([values, [0.0, 2 * base]])[:, None]
    ref = MixedMatrix(num, np.zeros((n + 2, 1), np.int64), (1,))
    picks = np.array([3, 50, 77, 119])
    query = MixedMatrix(num[picks] + step / 4, np.zeros((picks.size, 1), np.int64), (1,))
    return query, ref


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_screen_near_ties_are_resolved_exactly(name, monkeypatch):
    """Rows the screen cannot tell apart are re-scored against the whole tied band: the result equals brute
    force. Without that step (patched out below) the same search returns wrong neighbours."""
    import rote.core.neighbors as nbmod

    query, ref = _near_tie_tables(name)
    brute = BRUTE[name](query, ref)
    nb = knn(query, ref, k=2, distance=name, kernel="torch")
    check_neighbors(nb, brute, 2)
    want = np.argsort(brute, axis=1, kind="stable")[:, 0]
    assert (nb.indices[:, 0] == want).all()
    if name in nbmod._KERNEL_MODES:  # the compiled scan computes differences directly: no near tie here
        np.testing.assert_array_equal(knn(query, ref, k=2, distance=name, kernel="compiled").indices[:, 0], want)

    monkeypatch.setattr(nbmod, "_certify", lambda *args, **kwargs: None)
    unchecked = knn(query, ref, k=2, distance=name, kernel="torch")
    assert not np.array_equal(unchecked.indices[:, 0], want)  # the screen alone misses the nearest row


@pytest.mark.parametrize("name,kernel", PATHS)
def test_integer_keys_tie_without_re_scoring(name, kernel, monkeypatch):
    """Categorical-only tables give integer screening keys, computed without rounding: their many exact ties
    need no re-scoring (it would cost a pass per query row), and the result still equals brute force."""
    rng = np.random.default_rng(3)
    ref = MixedMatrix(np.zeros((900, 0)), rng.integers(0, 3, (900, 4)), (3, 3, 3, 3))
    query = MixedMatrix(np.zeros((200, 0)), rng.integers(0, 3, (200, 4)), (3, 3, 3, 3))
    cls = DISTANCES[name]
    seen: list[int] = []
    original = cls.exact
    monkeypatch.setattr(cls, "exact", lambda self, q, *a: (seen.append(q.n_rows), original(self, q, *a))[1])
    nb = knn(query, ref, k=2, distance=name, dedupe=False, kernel=kernel)
    check_neighbors(nb, BRUTE[name](query, ref), 2)
    assert seen and min(seen) > 1  # only whole blocks, no single-row re-scoring


# ---------------------------------------------------------------------------------------------- custom parameters


def test_gower_with_given_ranges_and_l2_with_given_moments():
    ref = MixedMatrix(np.array([[0.0], [1.0], [3.0]]), np.zeros((3, 0), np.int64), ())
    query = MixedMatrix(np.array([[0.5]]), np.zeros((1, 0), np.int64), ())
    nb = knn(query, ref, k=3, distance=GowerDistance(ranges=np.array([10.0])))
    np.testing.assert_allclose(nb.distances[0], [0.05, 0.05, 0.25], rtol=1e-12)  # |.|/10, not /3
    nb = knn(query, ref, k=1, distance=L2Distance(mean=np.array([0.0]), std=np.array([0.25])))
    np.testing.assert_allclose(nb.distances[0], [2.0], rtol=1e-12)  # 0.5 / 0.25


def test_empty_query_and_empty_reference():
    ref = MixedMatrix(np.zeros((0, 1)), np.zeros((0, 1), np.int64), (2,))
    query = MixedMatrix(np.array([[1.0]]), np.array([[0]]), (2,))
    nb = knn(query, ref, k=2, distance="gower")
    np.testing.assert_array_equal(nb.indices, [[-1, -1]])
    assert np.isinf(nb.distances).all()
    nb = knn(MixedMatrix(np.zeros((0, 1)), np.zeros((0, 1), np.int64), (2,)), query, k=2)
    assert nb.indices.shape == (0, 2) and nb.distances.shape == (0, 2)


# ---------------------------------------------------------------------------------------------- 4. errors


def _small() -> MixedMatrix:
    return MixedMatrix(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0], [1]]), (2,))


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one(k):
    with pytest.raises(ConfigError, match="k must be at least 1"):
        knn(_small(), _small(), k=k)


def test_mismatched_columns():
    other_num = MixedMatrix(np.array([[1.0]]), np.array([[0]]), (2,))
    other_cat = MixedMatrix(np.array([[1.0, 2.0]]), np.zeros((1, 0), np.int64), ())
    for other in (other_num, other_cat):
        with pytest.raises(ConfigError, match="same numeric and categorical columns"):
            knn(other, _small())
        with pytest.raises(ConfigError, match="same numeric and categorical columns"):
            knn(_small(), other)


def test_unknown_distance():
    with pytest.raises(ConfigError, match="unknown distance 'cosine'"):
        knn(_small(), _small(), distance="cosine")


def test_block_rows_below_one():
    with pytest.raises(ConfigError, match="block_rows"):
        knn(_small(), _small(), block_rows=0)


def test_cuda_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on CI, whatever this machine has
    with pytest.raises(BackendError, match="no CUDA GPU"):
        knn(_small(), _small(), device="cuda")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_numeric(bad):
    with pytest.raises(ConfigError, match="finite"):
        MixedMatrix(np.array([[1.0], [bad]]), np.zeros((2, 0), np.int64), ())


def test_malformed_mixed_matrix():
    with pytest.raises(ConfigError):
        MixedMatrix(np.zeros((3, 1)), np.zeros((2, 1), np.int64), (2,))  # unequal rows
    with pytest.raises(ConfigError):
        MixedMatrix(np.zeros((3, 1)), np.zeros((3, 2), np.int64), (2,))  # 2 columns, 1 category count
    with pytest.raises(ConfigError):
        MixedMatrix(np.zeros(3), np.zeros((3, 0), np.int64), ())  # 1-D numeric


# ---------------------------------------------------------------------------------------------- GPU (where present)


@pytest.mark.gpu  # deselected by `make test` (CI has no GPU); run with `make test-gpu` on a machine with one
@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_cuda_matches_brute_force(name):
    query, ref = _blocking_case(5)
    nb = knn(query, ref, k=3, distance=name, device="cuda")
    check_neighbors(nb, BRUTE[name](query, ref), 3)
    rng = np.random.default_rng(2)
    big = MixedMatrix(rng.uniform(-500, 500, (1500, 2)), rng.integers(0, 3, (1500, 2)), (3, 3))
    q = big.take(np.arange(20))
    check_neighbors(knn(q, big, k=2, distance=name, device="cuda"), BRUTE[name](q, big), 2)


# ---------------------------------------------------------------------------------------------- float limits


def _hypot_diff(a: float, b: float) -> float:
    """a - b in Python floats; where it overflows, 2 * (a/2 - b/2) (inf only past the largest float)."""
    d = a - b
    return d if math.isfinite(d) else 2.0 * (a / 2 - b / 2)


def hypot_tabcutmix(query: MixedMatrix, ref: MixedMatrix) -> np.ndarray:
    """The TabCutMix distance with every Euclidean distance taken by `math.hypot` (no squares, so no overflow)."""
    p, q = query.numeric.shape[1], query.categorical.shape[1]
    out = np.empty((query.n_rows, ref.n_rows))
    for i in range(query.n_rows):
        e = [
            math.hypot(*[_hypot_diff(float(query.numeric[i, c]), float(ref.numeric[j, c])) for c in range(p)])
            for j in range(ref.n_rows)
        ]
        lo, hi = min(e), max(e)
        for j in range(ref.n_rows):
            mm = 0.0 if hi == lo else (e[j] - lo) / (hi - lo)
            mism = sum(int(query.categorical[i, c]) != int(ref.categorical[j, c]) for c in range(q))
            out[i, j] = (mm + mism) / (p + q)
    return out


def hypot_l2(query: MixedMatrix, ref: MixedMatrix, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """L2 on (x - mean) / std with `math.hypot`, one-hot mismatches adding 2 to the square."""
    p, q = query.numeric.shape[1], query.categorical.shape[1]
    out = np.empty((query.n_rows, ref.n_rows))
    for i in range(query.n_rows):
        for j in range(ref.n_rows):
            diffs = []
            for c in range(p):
                za = _hypot_diff(float(query.numeric[i, c]), float(mean[c])) / float(std[c])
                zb = _hypot_diff(float(ref.numeric[j, c]), float(mean[c])) / float(std[c])
                diffs.append(za - zb)
            mism = sum(int(query.categorical[i, c]) != int(ref.categorical[j, c]) for c in range(q))
            out[i, j] = math.hypot(math.hypot(*diffs), math.sqrt(2.0 * mism))
    return out


def _float_limit_case(seed: int) -> tuple[MixedMatrix, MixedMatrix]:
    """Adult-like rows (a fnlwgt-sized column) with values at the float limits: 1e308, -1e307 and 1e-300."""
    rng = np.random.default_rng(seed)
    n = 40
    num = np.column_stack([rng.integers(17, 90, n), rng.uniform(1e4, 1e6, n)]).astype(np.float64)
    num[3, 1] = 1e308  # the case: one fnlwgt of 1e308
    num[7, 1] = -1e307
    num[11, 0] = 1e-300
    cat = rng.integers(0, 2, (n, 2))
    ref = MixedMatrix(num, cat, (2, 2))
    qnum = num[rng.permutation(n)] + rng.normal(0, 3.0, (n, 2))
    qnum[0, 1], qnum[1, 0] = 1.5e308, -1e308  # queries at the limit too
    query = MixedMatrix(qnum, rng.integers(0, 2, (n, 2)), (2, 2))
    return query, ref


@pytest.mark.parametrize("kernel", ["torch", "compiled"])
@pytest.mark.parametrize("seed", [0, 1])
def test_tabcutmix_at_the_float_limit_matches_hypot_brute_force(seed, kernel):
    query, ref = _float_limit_case(seed)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no silent overflow warnings either
        nb = knn(query, ref, k=2, distance="tabcutmix", kernel=kernel)
    brute = hypot_tabcutmix(query, ref)
    check_neighbors(nb, brute, 2, rtol=1e-9, atol=1e-15)
    # the distance-ratio decision (d1/d2 < 1/3) agrees row by row with the hypot brute force
    b = np.sort(brute, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = (b[:, 0] / b[:, 1]) < 1 / 3
        got = (nb.distances[:, 0] / nb.distances[:, 1]) < 1 / 3
    assert (got == expected).all()


@pytest.mark.parametrize("kernel", ["torch", "compiled"])
def test_l2_at_the_float_limit_matches_hypot_brute_force(kernel):
    query, ref = _float_limit_case(2)
    dist = L2Distance().fit(ref)
    assert np.isfinite(dist.mean).all() and np.isfinite(dist.std).all()
    # the moments equal a brute force on exactly power-of-two-scaled values
    col = [float(v) / 2.0**600 for v in ref.numeric[:, 1]]
    mean = sum(col) / len(col)
    assert dist.mean[1] == pytest.approx(mean * 2.0**600, rel=1e-12)
    assert dist.std[1] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in col) / len(col)) * 2.0**600, rel=1e-12)
    with np.errstate(over="raise", invalid="raise"):
        nb = knn(query, ref, k=2, distance=dist, kernel=kernel)
    check_neighbors(nb, hypot_l2(query, ref, dist.mean, dist.std), 2, rtol=1e-9, atol=1e-12)


def test_gower_at_the_float_limit():
    query, ref = _float_limit_case(3)
    check_neighbors(knn(query, ref, k=2, distance="gower"), brute_gower(query, ref), 2)
    # a column whose range itself exceeds the largest float is refused, naming the column and the fix
    wide = MixedMatrix(np.array([[1.7e308], [-1.7e308], [0.0]]), np.zeros((3, 0), np.int64), ())
    with pytest.raises(ConfigError, match=r"`gower`.*column 0.*rescale"):
        knn(wide, wide, distance="gower")


# ---------------------------------------------------------------------------------------------- the compiled scan


def _adult_like(seed: int, n_ref: int, n_q: int) -> tuple[MixedMatrix, MixedMatrix]:
    """Adult-like mixed rows (ages, a fnlwgt-sized column, a capital-gain-like column of mostly zeros, three
    categoricals) with exact copies and numeric-only copies among the queries."""
    rng = np.random.default_rng(seed)

    def rows(n: int) -> tuple[np.ndarray, np.ndarray]:
        num = np.column_stack(
            [rng.integers(17, 90, n), rng.integers(12_000, 1_500_000, n), rng.choice([0, 0, 0, 2174, 99999], n)]
        ).astype(np.float64)
        return num, np.column_stack([rng.integers(0, 9, n), rng.integers(0, 16, n), rng.integers(0, 2, n)])

    ref_num, ref_cat = rows(n_ref)
    q_num, q_cat = rows(n_q)
    src = rng.integers(0, n_ref, n_q // 3)
    q_num[: src.size], q_cat[: src.size // 2] = ref_num[src], ref_cat[src[: src.size // 2]]
    return MixedMatrix(q_num, q_cat, (9, 16, 2)), MixedMatrix(ref_num, ref_cat, (9, 16, 2))


@pytest.mark.parametrize("name", ["l2", "tabcutmix"])
def test_compiled_scan_equals_the_torch_path_and_brute_force(name):
    """On 60 x 1,500 Adult-like rows both paths return the brute-force distances bit for bit alike, and the
    same neighbours wherever the nearest rows are not tied."""
    query, ref = _adult_like(4, 1500, 60)
    a = knn(query, ref, k=2, distance=name, kernel="torch")
    b = knn(query, ref, k=2, distance=name, kernel="compiled")
    np.testing.assert_array_equal(a.distances, b.distances)
    check_neighbors(b, BRUTE[name](query, ref), 2)
    untied = a.distances[:, 0] < a.distances[:, 1]
    np.testing.assert_array_equal(a.indices[untied, 0], b.indices[untied, 0])


@pytest.mark.parametrize("name", ["l2", "tabcutmix"])
def test_compiled_scan_rows_it_cannot_certify_are_searched_exhaustively(name, monkeypatch):
    """Reference rows equal in their numbers and differing only in categories the query matches in none tie
    exactly in the screen, so the k-th and the last candidate cannot be told apart: those rows take the
    exhaustive path, and the result still equals brute force. With every row forced down that path too."""
    import rote.core.neighbors as nbmod

    rng = np.random.default_rng(9)
    n = 400
    ref_num = np.repeat(rng.uniform(0, 100, (20, 2)), 20, axis=0)  # 20 numeric profiles, 20 rows each
    ref_cat = np.column_stack([np.tile(np.arange(20), 20), np.zeros(n, np.int64)])
    ref = MixedMatrix(ref_num, ref_cat, (21, 1))
    q_cat = np.column_stack([np.full(11, 20), np.zeros(11, np.int64)])  # category 20: no reference row has it
    query = MixedMatrix(ref_num[::37] + 0.5, q_cat, (21, 1))
    failed: list[int] = []
    original = nbmod._Scan.certified

    def counting(self, *args):
        ok = original(self, *args)
        failed.append(int((~ok).sum()))
        return ok

    monkeypatch.setattr(nbmod._Scan, "certified", counting)
    nb = knn(query, ref, k=2, distance=name, kernel="compiled")
    check_neighbors(nb, BRUTE[name](query, ref), 2)
    assert sum(failed) == query.n_rows  # every query row had ties past its 10th candidate

    monkeypatch.setattr(nbmod._Scan, "certified", lambda self, key, mis, exact, k: np.zeros(len(key), bool))
    q2, r2 = _adult_like(1, 500, 40)
    check_neighbors(knn(q2, r2, k=3, distance=name, kernel="compiled"), BRUTE[name](q2, r2), 3)


def test_compiled_scan_threads_and_blocks_do_not_change_results():
    query, ref = _adult_like(2, 800, 100)
    base = knn(query, ref, k=2, distance="tabcutmix", kernel="compiled")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # three slices of each block, run in parallel
        for rows in (1, 7, 100):
            nb = knn(query, ref, k=2, distance="tabcutmix", kernel="compiled", block_rows=rows)
            np.testing.assert_array_equal(nb.distances, base.distances)
            np.testing.assert_array_equal(nb.indices, base.indices)
    finally:
        torch.set_num_threads(threads)


def test_auto_uses_the_compiled_scan_where_it_applies(monkeypatch):
    import rote.core.neighbors as nbmod

    calls: list[str] = []
    original = nbmod._Scan.__call__
    monkeypatch.setattr(nbmod._Scan, "__call__", lambda self, q: (calls.append(self.dist.name), original(self, q))[1])
    query, ref = _blocking_case()
    for name in sorted(DISTANCES):
        knn(query, ref, k=2, distance=name)
        knn(query, ref, k=2, distance=name, kernel="torch")
    assert sorted(set(calls)) == ["l2", "tabcutmix"]  # auto picks it for those two; torch and gower never


def test_without_a_compiler_auto_falls_back_and_compiled_is_refused(monkeypatch, tmp_path):
    import rote.core.neighbors as nbmod

    query, ref = _blocking_case()
    want = knn(query, ref, k=2, distance="tabcutmix", kernel="torch")
    monkeypatch.setenv("ROTE_CACHE_DIR", str(tmp_path))  # an empty cache: it has to compile
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    nbmod._compiled_scan.cache_clear()
    try:
        assert nbmod._compiled_scan() is None
        np.testing.assert_array_equal(knn(query, ref, k=2, distance="tabcutmix").distances, want.distances)
        with pytest.raises(ConfigError, match=r"`kernel`='compiled'.*C compiler"):
            knn(query, ref, k=2, distance="tabcutmix", kernel="compiled")
    finally:
        nbmod._compiled_scan.cache_clear()


def test_kernel_argument_is_checked():
    with pytest.raises(ConfigError, match="`kernel`"):
        knn(_small(), _small(), kernel="numba")
    with pytest.raises(ConfigError, match=r"`kernel`='compiled'.*'gower'"):
        knn(_small(), _small(), distance="gower", kernel="compiled")
