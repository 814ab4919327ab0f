"""Exact k-nearest-neighbour search over mixed numeric/categorical rows, blocked so memory stays bounded.

The hot kernel of tabular memorization audits, DCR and (later) image-copy checks. A query block of B rows is
compared with the whole reference set at once (B x N distances), the k smallest per row are kept, and the block
is thrown away, so memory is O(B * N) with B chosen from a byte budget. Numeric cross terms and categorical
match counts are matrix products (BLAS on all cores, or the GPU); selection is `torch.topk`.

Exactness: each block is screened with fast ranking keys (float64 products for `tabcutmix`, float32 for `gower`
and `l2`), and the best `k + REFINE_SLACK` candidates per row are re-scored directly in float64, so the reported
distances equal a direct float64 computation (for `tabcutmix`, the per-query minimum and maximum raw distances are
recomputed directly too, from the few rows the screen ranks nearest and farthest). The screen cannot hide a nearer
row: each distance bounds the rounding error of its keys (`screen_error`), and a row whose k best candidates are not
separated from the rest of the reference by more than twice that bound is re-scored against every reference row
whose key falls inside the band (rare: it takes near-ties in the screened keys). Identical reference rows are
collapsed before the search and expanded afterwards, so duplicates tie *exactly* (the 0/0 case of the distance ratio
is never an artefact of rounding). Among reference rows at exactly equal distance, which index is reported is
unspecified.

On the CPU, `tabcutmix` and `l2` use a compiled scan instead of the blocked products (`_SCAN_SOURCE`, compiled once
with the C compiler into rote's cache; `knn(..., kernel="torch")` or no compiler selects the torch path): it
computes each pair's squared distance directly and its mismatch count, keeps the best candidates in one pass over
cache-sized tiles (2.5-3.4x less CPU time on full Adult, bench/tabular_audit.py), and certifies them with the same kind
of rounding bound (`_Scan.certified`); the reported distances are the same `exact` values either way.

Distances (plain dict `DISTANCES` from preset name to class; pass an instance for custom parameters):

- `tabcutmix`: the distance of the TabCutMix code (Fang et al., ICML 2025, `cal_memorization.py`): Euclidean
  distance on raw numeric values, min-max rescaled per query row across all reference rows, plus the number of
  categorical mismatches, divided by the number of columns M. Relative: a query's distances depend on the whole
  reference set, so they are not comparable across reference sets.
- `gower`: mean over columns of min(|a - b| / range, 1) for numerics (range from the reference set; a column with
  zero range counts 0/1 inequality) and 0/1 mismatch for categoricals (as SDMetrics' DCR distance).
- `l2`: Euclidean on numerics standardized by the reference mean and standard deviation, concatenated with
  one-hot categoricals (a mismatch adds sqrt(2) in one column pair, i.e. 2 to the squared distance).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from rote.core.device import resolve_device
from rote.core.errors import ConfigError

EXTREME_ROWS = 4  # tabcutmix: nearest/farthest raw-distance rows whose distance is recomputed exactly
REFINE_SLACK = 8  # extra screened candidates re-scored exactly; covers rounding near-ties between ranks
DEFAULT_BLOCK_BYTES = 16 * 2**20  # one (B, N) float64 key block; 16-32 MiB measured fastest on Adult
# (smaller blocks pay per-block Python and refinement overhead, larger ones fall out of the cache)
SCAN_BLOCK_ROWS = 2048  # query rows per block of the compiled scan (its memory is O(block * k), not O(block * N))
ONEHOT_MAX_BYTES = 256 * 2**20  # above this, categorical matches are counted column by column instead


@dataclass(frozen=True)
class MixedMatrix:
    """Rows of a mixed table, encoded.

    numeric: (n, p) float64, raw values (distances do their own scaling).
    categorical: (n, q) int64 codes; code c of column j means the reference's c-th category of column j, -1 a
        value the reference never has (it matches nothing).
    n_categories: (q,) number of reference categories per categorical column.
    """

    numeric: np.ndarray
    categorical: np.ndarray
    n_categories: tuple[int, ...]

    def __post_init__(self) -> None:
        num = np.ascontiguousarray(self.numeric, dtype=np.float64)
        cat = np.ascontiguousarray(self.categorical, dtype=np.int64)
        if num.ndim != 2 or cat.ndim != 2 or num.shape[0] != cat.shape[0]:
            raise ConfigError(
                f"MixedMatrix: numeric {num.shape} and categorical {cat.shape} must be 2-D with equal rows"
            )
        if cat.shape[1] != len(self.n_categories):
            raise ConfigError(
                f"MixedMatrix: {cat.shape[1]} categorical columns but {len(self.n_categories)} n_categories"
            )
        if not np.isfinite(num).all():
            raise ConfigError("MixedMatrix: numeric values must be finite (validate tables before encoding)")
        object.__setattr__(self, "numeric", num)
        object.__setattr__(self, "categorical", cat)
        object.__setattr__(self, "n_categories", tuple(int(k) for k in self.n_categories))

    @property
    def n_rows(self) -> int:
        return self.numeric.shape[0]

    @property
    def n_columns(self) -> int:
        return self.numeric.shape[1] + self.categorical.shape[1]

    def take(self, rows: np.ndarray) -> "MixedMatrix":
        return MixedMatrix(self.numeric[rows], self.categorical[rows], self.n_categories)


@dataclass(frozen=True)
class Neighbors:
    """k nearest reference rows per query row, nearest first.

    indices: (n_query, k) int64 reference row indices (-1 where the reference has fewer than k rows).
    distances: (n_query, k) float64 (inf where the index is -1).
    """

    indices: np.ndarray
    distances: np.ndarray


# ---------------------------------------------------------------------------------------------- distances


class _Prepared:
    """Reference-side tensors a distance reuses for every query block, and reusable (B, N) work buffers
    (allocating a fresh block buffer each time costs as much as filling it)."""

    def __init__(self, **tensors: object) -> None:
        self.__dict__.update(tensors)
        self._buffers: dict[tuple[str, torch.dtype], torch.Tensor] = {}

    def buffer(self, name: str, rows: int, cols: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        buf = self._buffers.get((name, dtype))
        if buf is None or buf.shape[0] < rows or buf.shape[1] != cols:
            buf = self._buffers[(name, dtype)] = torch.empty((rows, cols), dtype=dtype, device=device)
        return buf[:rows]


def _onehot(
    cat: np.ndarray, n_categories: tuple[int, ...], dtype: torch.dtype, device: torch.device, width: int | None = None
) -> torch.Tensor:
    """(n, width) one-hot of categorical codes (width >= sum K; extra columns stay zero); unseen (-1) codes
    give an all-zero block."""
    n = cat.shape[0]
    offsets = (
        np.concatenate([[0], np.cumsum(n_categories)[:-1]]).astype(np.int64) if n_categories else np.zeros(0, np.int64)
    )
    out = torch.zeros((n, width or int(sum(n_categories))), dtype=dtype, device=device)
    if cat.shape[1]:
        rows, cols = np.nonzero(cat >= 0)
        flat = torch.as_tensor(cat[rows, cols] + offsets[cols], device=device)
        out[torch.as_tensor(rows, device=device), flat] = 1
    return out


_INT8_MIN_ROWS = 32  # torch._int_mm wants at least this many rows on the left


def _int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact int8 x int8 -> int32 product (`torch._int_mm`), padding `a` to the kernel's minimum row count."""
    if a.shape[0] < _INT8_MIN_ROWS:
        pad = torch.zeros((_INT8_MIN_ROWS - a.shape[0], a.shape[1]), dtype=a.dtype, device=a.device)
        return torch._int_mm(torch.cat([a, pad]), b)[: a.shape[0]]
    return torch._int_mm(a, b)


class _CategoricalMatches:
    """Counts equal categorical values between query and reference rows.

    A one-hot matrix product (int8 -> int32 on the CPU, 8x faster than float32 there; float32 otherwise, exact
    for counts below 2**24), or per-column compares when the one-hot matrix would be too large. The one-hot
    width is padded to a multiple of 8 (at least 8): the int8 kernel misreads operands with a size-1 dimension.
    The int8 path is checked against float32 on the actual reference before it is used.
    """

    def __init__(self, ref_cat: np.ndarray, n_categories: tuple[int, ...], device: torch.device) -> None:
        self.n_categories = n_categories
        self.q = ref_cat.shape[1]
        self.width = max(8, -(-int(sum(n_categories)) // 8) * 8)
        self.use_onehot = ref_cat.shape[0] * self.width <= ONEHOT_MAX_BYTES
        self.dtype = torch.float32
        if not self.use_onehot:
            self.ref = torch.as_tensor(ref_cat, device=device).T.contiguous()  # (q, N)
            return
        self.ref = _onehot(ref_cat, n_categories, torch.float32, device, self.width).T.contiguous()  # (width, N)
        if device.type == "cpu":  # CUDA's int8 kernel has other shape rules, and float32 is fast there
            ref8 = self.ref.to(torch.int8).contiguous()
            probe = _onehot(ref_cat[:_INT8_MIN_ROWS], n_categories, torch.float32, device, self.width)
            try:
                ok = torch.equal(_int8_matmul(probe.to(torch.int8), ref8), (probe @ self.ref).to(torch.int32))
            except (RuntimeError, AttributeError, NotImplementedError):
                ok = False
            if ok:
                self.ref, self.dtype = ref8, torch.int8

    def matches(self, qry_cat: np.ndarray, device: torch.device) -> torch.Tensor:
        """(B, N) number of equal categorical columns per pair (int32 or float32, exact)."""
        if self.use_onehot:
            a = _onehot(qry_cat, self.n_categories, self.dtype, device, self.width)
            return _int8_matmul(a, self.ref) if self.dtype == torch.int8 else a @ self.ref
        q = torch.as_tensor(qry_cat, device=device)
        out = torch.zeros((q.shape[0], self.ref.shape[1]), dtype=torch.int32, device=device)
        for j in range(self.q):
            out += (q[:, j : j + 1] == self.ref[j][None, :]) & (q[:, j : j + 1] >= 0)
        return out


def _mismatches(qa: np.ndarray, qb: np.ndarray) -> np.ndarray:
    """(B, c) categorical mismatch counts of query rows qa (B, q) with candidate rows qb (B, c, q)."""
    a = qa[:, None, :]
    return ((a != qb) | (a < 0)).sum(-1)


@dataclass
class Distance:
    """A mixed-type row distance.

    Subclasses implement `prepare` (reference-side tensors), `screen` ((B, N) keys whose order equals the
    distance order, up to float rounding) and `exact` (the distance of given pairs, computed directly in
    float64). The kernel keeps the best `k + REFINE_SLACK` screened candidates and ranks them by `exact`.
    `relative` distances (normalized per query over the reference set) are not comparable across reference sets.
    """

    name: ClassVar[str] = "distance"
    relative: ClassVar[bool] = False

    def fit(self, reference: MixedMatrix) -> "Distance":
        """Learn parameters that come from the reference table (ranges, means); returns self."""
        return self

    def prepare(self, reference: MixedMatrix, device: torch.device) -> _Prepared:
        raise NotImplementedError

    def screen(self, query: MixedMatrix, prep: _Prepared, device: torch.device) -> tuple[torch.Tensor, dict]:
        """(B, N) ranking keys of a query block against every prepared reference row, and per-row context
        that `exact` needs (numpy arrays)."""
        raise NotImplementedError

    def exact(self, query: MixedMatrix, reference: MixedMatrix, cand: np.ndarray, ctx: dict) -> np.ndarray:
        """(B, c) float64 distances of query row i to reference rows cand[i, :], computed directly."""
        raise NotImplementedError

    def screen_error(self, query: MixedMatrix, prep: _Prepared, ctx: dict) -> np.ndarray:
        """(B,) a bound on |screened key - the same key in exact arithmetic| for each query row of the block.
        Keys in exact arithmetic must order reference rows as the distance does (ties may break either way)."""
        raise NotImplementedError

    def params(self) -> dict:
        """Fitted parameters, for config capture."""
        return {}


def _rounding_bound(eps: float, terms: int, magnitude: np.ndarray, exact: bool = False) -> np.ndarray:
    """A generous bound on the rounding error of a length-`terms` dot product or sum whose absolute terms add up
    to at most `magnitude` (B,): 4 * (terms + 4) * eps * magnitude (the classic bound is about terms * eps).
    exact: the keys are small integers (no numeric columns), which floating point holds without error."""
    magnitude = np.asarray(magnitude, np.float64)
    return np.zeros_like(magnitude) if exact else 4.0 * (terms + 4) * eps * magnitude


_EPS32, _EPS64 = float(np.finfo(np.float32).eps), float(np.finfo(np.float64).eps)


def _safe_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b elementwise; where that overflows (values of opposite sign near the float limit) it is computed as
    2 * (a/2 - b/2), which is inf only when the true difference exceeds the largest float."""
    with np.errstate(over="ignore", invalid="ignore"):
        d = a - b
        bad = ~np.isfinite(d)
        if bad.any():
            d = np.where(bad, 2.0 * (0.5 * a - 0.5 * b), d)
    return d


def _safe_norm(diff: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis without overflow or underflow in the squares (as `math.hypot`): each
    vector is divided by its largest absolute entry before squaring. Equals sqrt(sum(diff**2)) to rounding."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        m = np.abs(diff).max(-1, initial=0.0)
        safe = np.where((m > 0) & np.isfinite(m), m, 1.0)
        scaled = np.sqrt(((diff / safe[..., None]) ** 2).sum(-1)) * safe
    return np.where(np.isfinite(m), np.where(m > 0, scaled, 0.0), np.inf)


def _scaled_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std (ddof 0)) per column of x (n, p) without overflow: a column whose values exceed 2**480 in size is
    first multiplied by a power of two (exact) so that its squares and sums stay finite, then scaled back."""
    big = np.abs(x).max(0) if x.shape[0] else np.zeros(x.shape[1])
    with np.errstate(divide="ignore"):
        shift = np.where(big > 2.0**480, np.ceil(np.log2(np.where(big > 0, big, 1.0))) - 480, 0.0)
    f = np.exp2(-shift)
    xs = x * f
    return xs.mean(0) / f, xs.std(0) / f


def _sq_dist_operands(x: np.ndarray, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented operands so that one product gives squared Euclidean distances: [-2x, 1, |x|^2] . [y; |y|^2; 1]."""
    t = torch.as_tensor(x, dtype=dtype, device=device)
    sq = (t * t).sum(1, keepdim=True)
    one = torch.ones_like(sq)
    return torch.cat([-2 * t, one, sq], 1), torch.cat([t, sq, one], 1).T.contiguous()


@dataclass
class TabCutMixDistance(Distance):
    """Per-query min-max-normalized raw Euclidean + categorical mismatch count, over M columns (see module doc).

    Ranking trick: with mm in [0, 1] and integer mismatch counts, D*M = mismatches + mm orders pairs exactly as
    the pair (mismatches, e) does lexicographically (equal D at the boundary mm=1 vs mm=0 is a true tie), so
    the screen key e^2 - (span(e^2) + 1) * matches needs no square roots and no normalization pass.
    """

    name: ClassVar[str] = "tabcutmix"
    relative: ClassVar[bool] = True

    def prepare(self, reference: MixedMatrix, device: torch.device) -> _Prepared:
        # Centre on the reference median: the distance is translation invariant, and centring shrinks the norms,
        # which keeps the |a|^2 + |b|^2 - 2ab expansion accurate in float64 for raw values such as 1e5 (the median,
        # not the mean, so that one huge value does not shift every row).
        center = np.median(reference.numeric, axis=0) if reference.n_rows else np.zeros(reference.numeric.shape[1])
        centred = _safe_diff(reference.numeric, center)
        # The distance is also invariant to one common scale factor (min-max per query): values past 2**500 are
        # multiplied by a power of two (exact) so that the squares in the screen cannot overflow.
        big = float(np.abs(centred).max()) if centred.size else 0.0
        unit = 2.0 ** -(np.ceil(np.log2(big)) - 500) if big > 2.0**500 else 1.0
        centred = centred * unit
        _, ref_op = _sq_dist_operands(centred, torch.float64, device)
        ref_sq = (centred**2).sum(1)
        return _Prepared(
            center=center,
            unit=unit,
            ref_op=ref_op,
            n_ref=reference.n_rows,
            ref_sq_max=float(ref_sq.max()) if ref_sq.size else 0.0,
            cats=_CategoricalMatches(reference.categorical, reference.n_categories, device),
        )

    def _centred(self, query: MixedMatrix, prep: _Prepared) -> np.ndarray:
        """(B, p) query values centred and scaled as the prepared reference (inf past the float limit)."""
        with np.errstate(over="ignore"):
            return _safe_diff(query.numeric, prep.center) * prep.unit

    def screen(self, query: MixedMatrix, prep: _Prepared, device: torch.device) -> tuple[torch.Tensor, dict]:
        b = query.n_rows
        ctx: dict = {}
        if query.numeric.shape[1]:
            with np.errstate(over="ignore", invalid="ignore"):
                q_op, _ = _sq_dist_operands(self._centred(query, prep), torch.float64, device)
            key = torch.mm(q_op, prep.ref_op, out=prep.buffer("key", b, prep.n_ref, torch.float64, device))  # e^2
            # The rows nearest and farthest in raw Euclidean distance: `exact` recomputes their e directly, so
            # the per-query min-max normalization does not inherit the screen's rounding (nor its block size).
            lo_rows, hi_rows = _smallest_and_largest(key, EXTREME_ROWS)
            lo2 = torch.gather(key, 1, lo_rows).amin(1, keepdim=True).clamp_(min=0)
            hi2 = torch.gather(key, 1, hi_rows).amax(1, keepdim=True).clamp_(min=0)
            ctx["lo_rows"], ctx["hi_rows"] = lo_rows.cpu().numpy(), hi_rows.cpu().numpy()
        else:
            key = prep.buffer("key", b, prep.n_ref, torch.float64, device).zero_()
            lo2 = hi2 = torch.zeros((b, 1), dtype=torch.float64, device=device)
        if query.categorical.shape[1]:
            # copied into float64 first: addcmul_ promoting int32 in place is 2x slower than copy + addcmul_
            matches = prep.buffer("matches", b, prep.n_ref, torch.float64, device)
            # any scale above the span of e^2 ranks (mismatches, e) lexicographically; unit^2 keeps it in the
            # units of the (possibly power-of-two scaled) squares
            scale = hi2 - lo2 + prep.unit**2
            key.addcmul_(matches.copy_(prep.cats.matches(query.categorical, device)), -scale)
            ctx["scale"] = scale[:, 0].cpu().numpy()
        return key, ctx

    def screen_error(self, query: MixedMatrix, prep: _Prepared, ctx: dict) -> np.ndarray:
        # e^2 = [-2x, 1, |x|^2] . [y; |y|^2; 1] on centred values: terms add up to (|x| + |y|)^2 <= 2(|x|^2 + |y|^2);
        # then - scale * matches, whose size is at most scale * q. Scaled squares can be subnormal, where the
        # rounding error is absolute: a few smallest subnormals per operation are added.
        with np.errstate(over="ignore"):
            q_sq = (self._centred(query, prep) ** 2).sum(1)
            mag = 2.0 * (q_sq + prep.ref_sq_max)
        p = query.numeric.shape[1]
        integral = p == 0
        err = _rounding_bound(_EPS64, p + 2, mag, exact=integral) + (0.0 if integral else 8.0 * (p + 6) * 5e-324)
        if "scale" in ctx:
            err = err + _rounding_bound(_EPS64, 2, mag + ctx["scale"] * query.categorical.shape[1], exact=integral)
        return err

    def exact(self, query: MixedMatrix, reference: MixedMatrix, cand: np.ndarray, ctx: dict) -> np.ndarray:
        mism = _mismatches(query.categorical, reference.categorical[cand])
        if not query.numeric.shape[1]:
            return mism / max(query.n_columns, 1)

        def euclid(rows: np.ndarray) -> np.ndarray:  # (B, c) raw Euclidean distances, computed directly
            # overflow-safe (a value of 1e308 squared is inf): hypot-style scaling, see `_safe_norm`
            return _safe_norm(_safe_diff(query.numeric[:, None, :], reference.numeric[rows]))

        e = euclid(cand)
        lo = np.minimum(euclid(ctx["lo_rows"]).min(1), e.min(1))[:, None]
        hi = np.maximum(euclid(ctx["hi_rows"]).max(1), e.max(1))[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            span = np.where(hi > lo, hi - lo, 1.0)  # sklearn MinMaxScaler: a zero range scales by 1
            mm = np.clip((e - lo) / span, 0.0, 1.0)
        return (mm + mism) / max(query.n_columns, 1)


@dataclass
class GowerDistance(Distance):
    """Gower: mean over M columns of min(|a-b|/range, 1) (numeric) and 1[a != b] (categorical).

    ranges: (p,) per-column range; learned from the reference (max - min) by `fit` when None. A zero range
    counts 0/1 inequality for that column (SDMetrics' convention).
    """

    name: ClassVar[str] = "gower"
    ranges: np.ndarray | None = None

    def fit(self, reference: MixedMatrix) -> "GowerDistance":
        if self.ranges is None:
            x = reference.numeric
            with np.errstate(over="ignore"):
                self.ranges = (x.max(0) - x.min(0)) if x.shape[0] else np.zeros(x.shape[1])
        self.ranges = np.asarray(self.ranges, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(self.ranges))
        if bad.size:
            raise ConfigError(
                f"`gower` distance: numeric column {int(bad[0])} spans more than the largest float "
                f"(range {self.ranges[bad[0]]}); rescale that column (e.g. divide by 1e300) or use `tabcutmix`/`l2`"
            )
        return self

    def params(self) -> dict:
        return {"ranges": None if self.ranges is None else self.ranges.tolist()}

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        r = self.ranges
        with np.errstate(over="ignore"):
            return x / np.where(r > 0, r, 1.0)

    def prepare(self, reference: MixedMatrix, device: torch.device) -> _Prepared:
        # Scaled values are shifted to start at the reference minimum: |a - b| does not change, and float32 keeps
        # its resolution for columns far from zero (years, timestamps) whose range is small.
        offset = reference.numeric.min(0) if reference.n_rows else np.zeros(reference.numeric.shape[1])
        ref = self._scaled(_safe_diff(reference.numeric, offset))
        return _Prepared(
            ref=torch.as_tensor(ref, dtype=torch.float32, device=device).T.contiguous(),
            offset=offset,
            zero=[bool(z) for z in self.ranges <= 0],
            # |a - b| / range <= 1 whenever both values lie inside the reference range: skip the clamp then
            lo=ref.min(0) if reference.n_rows else None,
            hi=ref.max(0) if reference.n_rows else None,
            ref_abs_max=np.abs(ref).max(0) if reference.n_rows else np.zeros(ref.shape[1]),
            cats=_CategoricalMatches(reference.categorical, reference.n_categories, device),
        )

    def screen(self, query: MixedMatrix, prep: _Prepared, device: torch.device) -> tuple[torch.Tensor, dict]:
        qn = self._scaled(_safe_diff(query.numeric, prep.offset))
        qs = torch.as_tensor(qn, dtype=torch.float32, device=device)
        b, n = qs.shape[0], prep.ref.shape[1]
        clamp = [bool((qn[:, j] < prep.lo[j]).any() or (qn[:, j] > prep.hi[j]).any()) for j in range(qn.shape[1])]
        d = prep.buffer("key", b, n, torch.float32, device).zero_()
        t = prep.buffer("term", b, n, torch.float32, device)
        for j in range(qs.shape[1]):
            torch.sub(qs[:, j : j + 1], prep.ref[j][None, :], out=t).abs_()
            if prep.zero[j]:
                torch.gt(t, 0, out=t)  # zero range: 0/1 inequality (t holds 1.0 where different)
            elif clamp[j]:
                t.clamp_(max=1.0)  # only binds for query values outside the reference range
            d.add_(t)
        if query.categorical.shape[1]:
            d.sub_(prep.cats.matches(query.categorical, device))  # mismatches = q - matches; q is constant
        return d, {}

    def screen_error(self, query: MixedMatrix, prep: _Prepared, ctx: dict) -> np.ndarray:
        # float32 inputs carry eps * |value| each; each term is at most 1 (clamped, or both values in range, or
        # 0/1); the sum of p terms minus at most q matches is rounded at every step
        p, q = query.numeric.shape[1], query.categorical.shape[1]
        inputs = (np.abs(self._scaled(_safe_diff(query.numeric, prep.offset))) + prep.ref_abs_max).sum(1)
        return _rounding_bound(_EPS32, p + 1, 2.0 * inputs + (p + q) * (p + 1), exact=p == 0)

    def exact(self, query: MixedMatrix, reference: MixedMatrix, cand: np.ndarray, ctx: dict) -> np.ndarray:
        r = self.ranges
        diff = np.abs(_safe_diff(query.numeric[:, None, :], reference.numeric[cand]))  # inf beyond the float max
        with np.errstate(over="ignore"):
            num = np.where(r > 0, np.minimum(diff / np.where(r > 0, r, 1.0), 1.0), (diff > 0).astype(np.float64))
        return (num.sum(-1) + _mismatches(query.categorical, reference.categorical[cand])) / max(query.n_columns, 1)


@dataclass
class L2Distance(Distance):
    """Euclidean on standardized numerics ((x - mean) / std, std from the reference, 1 where 0) and one-hots.

    A categorical mismatch adds 2 to the squared distance (two one-hot entries differ); a query code of -1 (a
    category outside the reference's encoding) has an all-zero one-hot block and adds 1. The tabular audit
    encodes both tables over the union of their categories, so there every mismatch adds 2.
    """

    name: ClassVar[str] = "l2"
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def fit(self, reference: MixedMatrix) -> "L2Distance":
        x = reference.numeric
        mean, std = _scaled_moments(x) if x.shape[0] else (np.zeros(x.shape[1]), np.ones(x.shape[1]))
        if self.mean is None:
            self.mean = mean
        if self.std is None:
            s = std
            # a constant column's std is a rounding residue (e.g. 1e-17 for [0.1, 0.1, 0.1]), not 0: test max == min
            constant = (x.max(0) == x.min(0)) if x.shape[0] else np.ones(x.shape[1], bool)
            self.std = np.where(constant | ~(s > 0), 1.0, s)
        self.mean, self.std = np.asarray(self.mean, np.float64), np.asarray(self.std, np.float64)
        return self

    def params(self) -> dict:
        return {
            "mean": None if self.mean is None else self.mean.tolist(),
            "std": None if self.std is None else self.std.tolist(),
        }

    def _z(self, x: np.ndarray) -> np.ndarray:
        """Standardized values; where (x - mean) overflows, x/std - mean/std (inf only past the float max)."""
        with np.errstate(over="ignore", invalid="ignore"):
            z = (x - self.mean) / self.std
            bad = ~np.isfinite(z)
            if bad.any():
                z = np.where(bad, x / self.std - self.mean / self.std, z)
        return z

    def prepare(self, reference: MixedMatrix, device: torch.device) -> _Prepared:
        z = self._z(reference.numeric)
        _, ref_op = _sq_dist_operands(z, torch.float32, device)
        known = torch.as_tensor((reference.categorical >= 0).sum(1), dtype=torch.float32, device=device)
        return _Prepared(
            ref_op=ref_op,
            known=known,
            ref_sq_max=float((z * z).sum(1).max()) if z.shape[0] else 0.0,
            cats=_CategoricalMatches(reference.categorical, reference.n_categories, device),
        )

    def screen(self, query: MixedMatrix, prep: _Prepared, device: torch.device) -> tuple[torch.Tensor, dict]:
        q_op, _ = _sq_dist_operands(self._z(query.numeric), torch.float32, device)
        d2 = q_op @ prep.ref_op
        if query.categorical.shape[1]:
            # one-hot part = known_q + known_r - 2 * matches; known_q is constant per row
            d2.add_(prep.known[None, :]).sub_(prep.cats.matches(query.categorical, device), alpha=2)
        return d2, {}

    def screen_error(self, query: MixedMatrix, prep: _Prepared, ctx: dict) -> np.ndarray:
        # the squared-distance product on standardized values (terms add up to <= 2(|x|^2 + |y|^2)), then
        # + known - 2 matches (at most 3q)
        z = self._z(query.numeric)
        with np.errstate(over="ignore"):
            mag = 2.0 * ((z * z).sum(1) + prep.ref_sq_max) + 3.0 * query.categorical.shape[1]
        return _rounding_bound(_EPS32, query.numeric.shape[1] + 4, mag, exact=query.numeric.shape[1] == 0)

    def exact(self, query: MixedMatrix, reference: MixedMatrix, cand: np.ndarray, ctx: dict) -> np.ndarray:
        za, zb = self._z(query.numeric), self._z(reference.numeric[cand])
        num = _safe_norm(_safe_diff(za[:, None, :], zb)) if za.shape[1] else np.zeros(cand.shape)
        qa = query.categorical[:, None, :]
        qb = reference.categorical[cand]
        # one-hot difference: equal known codes 0; two different known codes 2; one side unseen 1; both unseen 0
        onehot = np.where(qa == qb, np.where(qa >= 0, 0.0, 0.0), np.where((qa >= 0) & (qb >= 0), 2.0, 1.0)).sum(-1)
        # sqrt(num^2 + onehot) without squaring a huge num: onehot <= 2q is negligible beside num > 1e150
        with np.errstate(over="ignore"):
            return np.where(num < 1e150, np.sqrt(num * num + onehot), num)


DISTANCES: dict[str, type[Distance]] = {"tabcutmix": TabCutMixDistance, "gower": GowerDistance, "l2": L2Distance}


def get_distance(distance: str | Distance) -> Distance:
    """A fresh distance instance from a preset name, or the instance itself."""
    if isinstance(distance, Distance):
        return distance
    try:
        return DISTANCES[distance]()
    except KeyError:
        raise ConfigError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}") from None


# ---------------------------------------------------------------------------------------------- compiled scan

# A fused scan for `tabcutmix` and `l2` on the CPU: for each query row it computes every reference row's squared
# numeric distance directly (sum of squared differences, no |a|^2 + |b|^2 - 2ab cancellation) and its categorical
# mismatches, and keeps the best `kc` candidates (and, for `tabcutmix`, the `ne` nearest and farthest rows in raw
# distance) in one pass, where the torch path writes and re-reads a (B, N) key block six times. Query and
# reference tiles are sized so that both stay in the L1/L2 cache. Compiled once per machine with the C compiler
# (`$CC`, else `cc`) into rote's cache; without a compiler `knn` uses the torch path, whose results are the same.
_SCAN_SOURCE = r"""
#include <stdint.h>
#include <math.h>

#define QT 16   /* query rows per tile */
#define RT 256  /* reference rows per tile */

/* Entries kept sorted ascending by (m, e); insert one, dropping the last. */
static inline void put(int64_t k, int16_t *M, double *E, int64_t *I, int16_t m, double e, int64_t idx) {
    int64_t pos = k - 1;
    while (pos > 0 && (m < M[pos - 1] || (m == M[pos - 1] && e < E[pos - 1]))) {
        M[pos] = M[pos - 1]; E[pos] = E[pos - 1]; I[pos] = I[pos - 1]; pos--;
    }
    M[pos] = m; E[pos] = e; I[pos] = idx;
}

/* mode 0 (tabcutmix): candidates by (mismatches, e2) lexicographically, plus the ne smallest and largest e2.
   mode 1 (l2): candidates by e2 + one-hot difference (different known codes 2, one side unseen 1).
   qnum (nq, p) and qcat (nq, q) row-major; rnum (p, nr) and rcat (q, nr) column-major. */
void rote_knn_scan(int64_t nq, int64_t nr, int64_t p, int64_t q, const double *qnum, const double *rnum,
                   const int16_t *qcat, const int16_t *rcat, int64_t kc, int32_t mode, int64_t ne,
                   int64_t *cand, double *ckey, int16_t *cmis, int64_t *lo_idx, double *lo_key,
                   int64_t *hi_idx, double *hi_key) {
    double e2[QT][RT];
    int16_t mis[QT][RT];
    int16_t zero_m[64] = {0};
    for (int64_t i = 0; i < nq * kc; i++) { cand[i] = -1; ckey[i] = INFINITY; cmis[i] = INT16_MAX; }
    if (mode == 0)
        for (int64_t i = 0; i < nq * ne; i++) { lo_idx[i] = hi_idx[i] = -1; lo_key[i] = hi_key[i] = INFINITY; }
    for (int64_t q0 = 0; q0 < nq; q0 += QT) {
        const int64_t qn = nq - q0 < QT ? nq - q0 : QT;
        for (int64_t r0 = 0; r0 < nr; r0 += RT) {
            const int64_t rn = nr - r0 < RT ? nr - r0 : RT;
            for (int64_t i = 0; i < qn; i++) {
                double *row = e2[i];
                int16_t *mrow = mis[i];
                const double *x = qnum + (q0 + i) * p;
                const int16_t *a = qcat + (q0 + i) * q;
                for (int64_t j = 0; j < rn; j++) { row[j] = 0.0; mrow[j] = 0; }
                for (int64_t c = 0; c < p; c++) {
                    const double xc = x[c], *y = rnum + c * nr + r0;
                    for (int64_t j = 0; j < rn; j++) { const double d = xc - y[j]; row[j] += d * d; }
                }
                for (int64_t c = 0; c < q; c++) {
                    const int16_t ac = a[c], *b = rcat + c * nr + r0;
                    if (mode == 0) {  /* a mismatch, or an unseen query value, counts 1 */
                        if (ac < 0) for (int64_t j = 0; j < rn; j++) mrow[j] += 1;
                        else for (int64_t j = 0; j < rn; j++) mrow[j] += (b[j] != ac);
                    } else {
                        for (int64_t j = 0; j < rn; j++)
                            mrow[j] += (b[j] == ac) ? 0 : (((ac < 0) | (b[j] < 0)) ? 1 : 2);
                    }
                }
                if (mode != 0)
                    for (int64_t j = 0; j < rn; j++) { row[j] += (double)mrow[j]; mrow[j] = 0; }
            }
            for (int64_t i = 0; i < qn; i++) {
                const int64_t g = q0 + i;
                int16_t *M = cmis + g * kc;
                double *E = ckey + g * kc;
                int64_t *I = cand + g * kc;
                const double *row = e2[i];
                const int16_t *mrow = mis[i];
                int16_t wm = M[kc - 1];
                double we = E[kc - 1];
                int any = 0;  /* vectorized pre-check: does any row of this tile enter the candidates? */
                for (int64_t j = 0; j < rn; j++) any |= (mrow[j] < wm) | ((mrow[j] == wm) & (row[j] < we));
                for (int64_t j = 0; any && j < rn; j++) {
                    if (mrow[j] < wm || (mrow[j] == wm && row[j] < we)) {
                        put(kc, M, E, I, mrow[j], row[j], r0 + j);
                        wm = M[kc - 1]; we = E[kc - 1];
                    }
                }
                if (mode == 0) {  /* hi_key holds -e2, so that both lists keep their smallest keys */
                    double *LK = lo_key + g * ne, *HK = hi_key + g * ne;
                    int64_t *LI = lo_idx + g * ne, *HI = hi_idx + g * ne;
                    double lw = LK[ne - 1], hw = HK[ne - 1];
                    int ext = 0;
                    for (int64_t j = 0; j < rn; j++) ext |= (row[j] < lw) | (-row[j] < hw);
                    for (int64_t j = 0; ext && j < rn; j++) {
                        if (row[j] < lw) { put(ne, zero_m, LK, LI, 0, row[j], r0 + j); lw = LK[ne - 1]; }
                        if (-row[j] < hw) { put(ne, zero_m, HK, HI, 0, -row[j], r0 + j); hw = HK[ne - 1]; }
                    }
                }
            }
        }
    }
}
"""
_SCAN_FLAGS = (("-O3", "-march=native"), ("-O3",))  # the second where the compiler has no -march=native
_KERNEL_MODES = {"tabcutmix": 0, "l2": 1}
_INT16_MAX = 32767


def _cache_root() -> Path:
    """rote's cache: $ROTE_CACHE_DIR, else ~/.cache/rote."""
    env = os.environ.get("ROTE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rote"


def _build_scan(so: Path) -> bool:
    """Compile `_SCAN_SOURCE` into `so` (atomically: concurrent processes may race); True on success."""
    so.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=so.parent) as tmp:
        src, out = Path(tmp) / "scan.c", Path(tmp) / "scan.so"
        src.write_text(_SCAN_SOURCE)
        for flags in _SCAN_FLAGS:
            cmd = [os.environ.get("CC", "cc"), *flags, "-shared", "-fPIC", "-o", str(out), str(src)]
            if subprocess.run(cmd, capture_output=True, timeout=300, check=False).returncode == 0:
                os.replace(out, so)
                return True
    return False


@functools.lru_cache(maxsize=1)
def _compiled_scan() -> Callable | None:
    """The compiled scan function, or None where no C compiler works (the torch path is used then). Checked
    on a small case against numpy before it is trusted."""
    tag = hashlib.sha256(f"{_SCAN_SOURCE}{_SCAN_FLAGS}{platform.machine()}{platform.node()}".encode()).hexdigest()
    try:  # no home folder (RuntimeError), a read-only cache, no compiler: the torch path
        so = _cache_root() / "kernels" / f"knn_scan_{tag[:16]}.so"
        if not so.exists() and not _build_scan(so):
            return None
        fn = ctypes.CDLL(str(so)).rote_knn_scan
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [i64, i64, i64, i64, ptr, ptr, ptr, ptr, i64, ctypes.c_int32, i64, *([ptr] * 7)]
    fn.restype = None
    rng = np.random.default_rng(0)
    num, cat = rng.normal(size=(40, 3)), rng.integers(-1, 3, size=(40, 2))
    for mode in (0, 1):
        got = _run_scan(fn, num[:7], cat[:7], num.T.copy(), np.ascontiguousarray(cat.T, np.int16), 5, mode, 2)
        d2 = ((num[:7, None, :] - num[None, :, :]) ** 2).sum(-1)
        a, b = cat[:7, None, :], cat[None, :, :]
        if mode == 0:
            mis = ((a != b) | (a < 0)).sum(-1)
            key = mis * (d2.max() + 1) + d2
        else:
            key = d2 + np.where(a == b, 0, np.where((a < 0) | (b < 0), 1, 2)).sum(-1)
        want = np.sort(key, 1)[:, :5]
        if not np.allclose(np.take_along_axis(key, got[0], 1), want, rtol=1e-12, atol=1e-12):
            return None
    return fn


def _run_scan(
    fn: Callable, qnum: np.ndarray, qcat: np.ndarray, rnum: np.ndarray, rcat: np.ndarray, kc: int, mode: int, ne: int
) -> tuple[np.ndarray, ...]:
    """Call the compiled scan on query rows (qnum (B, p) float64, qcat (B, q)) against a column-major reference
    (rnum (p, N), rcat (q, N) int16). Returns cand (B, kc) int64, key (B, kc) float64 (e2, or e2 + one-hot),
    mismatches (B, kc) int16, lo_idx, lo_key, hi_idx, hi_key (B, ne) (mode 0 only; hi_key = -e2)."""
    qnum = np.ascontiguousarray(qnum, dtype=np.float64)
    qcat = np.ascontiguousarray(qcat, dtype=np.int16)
    b = qnum.shape[0]
    out = (
        np.empty((b, kc), np.int64),
        np.empty((b, kc)),
        np.empty((b, kc), np.int16),
        np.empty((b, ne), np.int64),
        np.empty((b, ne)),
        np.empty((b, ne), np.int64),
        np.empty((b, ne)),
    )
    ptrs = [a.ctypes.data for a in (qnum, rnum, qcat, rcat)]
    fn(b, rnum.shape[1], rnum.shape[0], rcat.shape[0], *ptrs, kc, mode, ne, *[a.ctypes.data for a in out])
    return out


class _Scan:
    """The compiled scan against one (deduplicated) reference, for `TabCutMixDistance` or `L2Distance`.

    The kernel gets the values the distance's `exact` uses: raw numerics for `tabcutmix` (times a power of two,
    exact, where values exceed 2**500, so that squares cannot overflow) and standardized numerics for `l2`.
    """

    def __init__(self, fn: Callable, dist: Distance, reference: MixedMatrix, kc: int, threads: int) -> None:
        self.fn, self.dist, self.kc, self.threads = fn, dist, kc, max(1, threads)
        self.mode = _KERNEL_MODES[dist.name]
        x = reference.numeric
        big = float(np.abs(x).max()) if x.size else 0.0
        self.unit = 2.0 ** -(np.ceil(np.log2(big)) - 500) if self.mode == 0 and big > 2.0**500 else 1.0
        self.rnum = np.ascontiguousarray(self._values(x).T)
        self.rcat = np.ascontiguousarray(reference.categorical.T, dtype=np.int16)
        self.p = x.shape[1]

    def _values(self, numeric: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return numeric * self.unit if self.mode == 0 else self.dist._z(numeric)

    def __call__(self, query: MixedMatrix) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray, np.ndarray]:
        """cand (B, kc) candidate rows (best first), ctx for `exact`, their screened keys (B, kc) and mismatch
        counts (B, kc), and bad (B,) bool: rows with a non-finite value or an overflowed key (searched
        exhaustively by the caller)."""
        qnum = self._values(query.numeric)
        ne = EXTREME_ROWS if self.mode == 0 else 1
        b = query.n_rows
        step = -(-b // self.threads)
        parts = [(s, min(b, s + step)) for s in range(0, b, step)]

        def run(span: tuple[int, int]) -> tuple[np.ndarray, ...]:
            s, e = span
            return _run_scan(self.fn, qnum[s:e], query.categorical[s:e], self.rnum, self.rcat, self.kc, self.mode, ne)

        if len(parts) > 1:  # ctypes releases the GIL: one thread per slice of query rows
            with ThreadPoolExecutor(len(parts)) as pool:
                res = list(pool.map(run, parts))
        else:
            res = [run(parts[0])]
        cand, key, mis, lo_idx, _, hi_idx, hi_key = (np.concatenate(r) for r in zip(*res))
        bad = ~np.isfinite(qnum).all(1) | ~np.isfinite(key[:, -1])
        if self.mode == 0:
            bad |= ~np.isfinite(hi_key[:, 0])  # a squared raw distance overflowed somewhere in the row
        ctx = {"lo_rows": lo_idx, "hi_rows": hi_idx} if self.mode == 0 and self.p else {}
        return cand, ctx, key, mis.astype(np.int64), bad

    def certified(self, key: np.ndarray, mis: np.ndarray, exact: np.ndarray, k: int) -> np.ndarray:
        """(B,) bool: the kc screened candidates provably contain the k nearest rows.

        A left-out row r has (mismatches, key) >= (m_w, s_w), the last candidate's, lexicographically (mode 1:
        mismatches are 0). A screened key is the sum of p squared differences of the values `exact` uses (plus
        exact integers), so it is within a relative gamma = 4 (p + 4) eps of its exact-arithmetic value, plus a
        few smallest subnormals per term where squares underflow or power-of-two scaling rounds. Each of the k
        exactly-best candidates i with m_i < m_w cannot be beaten (mismatches are exact integers and dominate
        the `tabcutmix` distance); with m_i = m_w it cannot be beaten when s_i (1 + 16 gamma) + abs <= s_w
        (a margin that also covers the rounding of `exact` itself). Rows that fail are searched exhaustively.
        """
        gamma = 4.0 * (self.p + 4) * _EPS64
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]
        s_i = np.take_along_axis(key, order, 1)
        m_i = np.take_along_axis(mis, order, 1)
        s_w, m_w = key[:, -1:], mis[:, -1:]
        tiny = 0.0 if self.p == 0 else 8.0 * (self.p + 6) * 5e-324
        with np.errstate(over="ignore", invalid="ignore"):
            ok = (m_i < m_w) | ((m_i == m_w) & (s_i * (1.0 + 16.0 * gamma) + tiny * (1.0 + np.sqrt(s_i)) <= s_w))
        return ok.all(1)


def _scan_for(dist: Distance, reference: MixedMatrix, kc: int, device: torch.device, kernel: str) -> _Scan | None:
    """The compiled scan where `kernel` allows it and it applies (CPU, `tabcutmix` or `l2` exactly, codes and
    counts that fit int16); None for the torch path."""
    if kernel == "torch":
        return None
    applies = (
        device.type == "cpu"
        and type(dist) in (TabCutMixDistance, L2Distance)
        and max(reference.n_categories, default=0) <= _INT16_MAX
        and 2 * reference.categorical.shape[1] <= _INT16_MAX
    )
    fn = _compiled_scan() if applies else None
    if fn is None:
        if kernel == "compiled":
            raise ConfigError(
                "`kernel`='compiled' needs a working C compiler (`$CC` or `cc`), the CPU, and the `tabcutmix` or "
                f"`l2` distance (got {dist.name!r} on {device.type}); use kernel='auto' to fall back to torch"
            )
        return None
    return _Scan(fn, dist, reference, kc, torch.get_num_threads())


# ---------------------------------------------------------------------------------------------- the kernel


def _unique_rows(m: MixedMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first_index (u,), inverse (n,), counts (u,)) of identical rows, first indices in increasing order."""
    key = np.concatenate([m.numeric, m.categorical.astype(np.float64)], axis=1)
    key = np.where(key == 0, 0.0, key)  # -0.0 and 0.0 are the same value
    if key.shape[1] == 0:
        return (
            np.zeros(min(m.n_rows, 1), np.int64),
            np.zeros(m.n_rows, np.int64),
            np.array([m.n_rows])[: min(m.n_rows, 1)],
        )
    _, first, inverse, counts = np.unique(key, axis=0, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(first, kind="stable")  # renumber so unique rows keep the reference's order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order], rank[inverse.reshape(-1)], counts[order]


def _occurrences(inverse: np.ndarray, n_unique: int, k: int) -> np.ndarray:
    """(u, k) the first k original indices of each unique row (-1 padded)."""
    order = np.argsort(inverse, kind="stable")
    grouped = inverse[order]
    starts = np.searchsorted(grouped, np.arange(n_unique))
    occ = np.full((n_unique, k), -1, np.int64)
    for j in range(k):
        pos = starts + j
        ok = (pos < grouped.size) & (grouped[np.minimum(pos, grouped.size - 1)] == np.arange(n_unique))
        occ[ok, j] = order[pos[ok]]
    return occ


def _pick(keys: torch.Tensor, extreme: torch.Tensor, n: int, chunk: int, largest: bool) -> torch.Tensor:
    """(B, n) columns of the n smallest (largest) keys, given each row's per-chunk minima (maxima) `extreme`
    (B, width // chunk) over the leading whole chunks: the n best values all lie in the n best chunks or the tail."""
    b, width = keys.shape
    n_head = extreme.shape[1] * chunk
    best = torch.topk(extreme, n, dim=1, largest=largest, sorted=False).indices  # (B, n)
    cols = (best[:, :, None] * chunk + torch.arange(chunk, device=keys.device)).reshape(b, n * chunk)
    tail = torch.arange(n_head, width, device=keys.device).expand(b, -1)
    cols = torch.cat([cols, tail], 1)
    pick = torch.topk(torch.gather(keys, 1, cols), n, dim=1, largest=largest, sorted=False).indices
    return torch.gather(cols, 1, pick)


def _smallest(keys: torch.Tensor, n: int, chunk: int = 64, largest: bool = False) -> torch.Tensor:
    """(B, n) column indices of the n smallest (or largest) keys per row, in any order; ties broken arbitrarily.

    Exact and faster than `topk` on wide rows: the n smallest values all lie in the n chunks with the smallest
    minima, so one cheap `amin` over chunks, a `topk` over chunk minima, and a `topk` over n * chunk gathered
    values suffice.
    """
    b, width = keys.shape
    n = min(n, width)
    n_chunks = width // chunk
    if n_chunks <= n:
        return torch.topk(keys, n, dim=1, largest=largest, sorted=False).indices
    head = keys[:, : n_chunks * chunk].reshape(b, n_chunks, chunk)
    return _pick(keys, torch.amax(head, 2) if largest else torch.amin(head, 2), n, chunk, largest)


def _smallest_and_largest(keys: torch.Tensor, n: int, chunk: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """`_smallest(keys, n)` and `_smallest(keys, n, largest=True)` (the chunk views are shared)."""
    b, width = keys.shape
    n = min(n, width)
    n_chunks = width // chunk
    if n_chunks <= n:
        return (
            torch.topk(keys, n, dim=1, largest=False, sorted=False).indices,
            torch.topk(keys, n, dim=1, largest=True, sorted=False).indices,
        )
    head = keys[:, : n_chunks * chunk].reshape(b, n_chunks, chunk)
    # amin and amax separately: torch.aminmax over an inner dimension is about 10x slower on the CPU
    return _pick(keys, torch.amin(head, 2), n, chunk, False), _pick(keys, torch.amax(head, 2), n, chunk, True)


def _expand_duplicates(
    cand: np.ndarray, cvals: np.ndarray, counts: np.ndarray, occ: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Turn sorted unique-row candidates (B, c) into the k nearest original rows: unique row u stands for
    counts[u] reference rows at the same distance (occ[u] lists their first k original indices)."""
    take = np.minimum(counts[cand], k)  # (B, c)
    cum = np.cumsum(take, axis=1)
    idx = np.full((cand.shape[0], k), -1, np.int64)
    dist = np.full((cand.shape[0], k), np.inf)
    rows = np.arange(cand.shape[0])
    for s in range(k):
        pos = (cum <= s).sum(1)  # candidate that fills output slot s
        ok = pos < cand.shape[1]
        p = np.minimum(pos, cand.shape[1] - 1)
        within = s - (cum[rows, p] - take[rows, p])
        idx[ok, s] = occ[cand[rows, p], within][ok]
        dist[ok, s] = cvals[rows, p][ok]
    return idx, dist


def _certify(
    dist: Distance,
    qb: MixedMatrix,
    ref: MixedMatrix,
    prep: _Prepared,
    keys: torch.Tensor,
    cand_t: torch.Tensor,
    cand: np.ndarray,
    exact: np.ndarray,
    ctx: dict,
    k: int,
) -> None:
    """Make the screened candidates provably contain the k nearest rows; fixes `cand` and `exact` in place.

    Every row left out of `cand` has a screened key >= the largest candidate key, s_last. If s_last exceeds the
    screened keys of the k exactly-best candidates by at least twice the screen's error bound, no left-out row
    can be nearer in exact arithmetic (at most tied). Otherwise the row is re-scored against every reference row
    whose screened key lies within that band, and its candidates become the best of those.
    """
    ck = torch.gather(keys, 1, cand_t).to(torch.float64).cpu().numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        band = 2.0 * dist.screen_error(qb, prep, ctx)
    band = np.where(np.isnan(band), np.inf, band)  # no bound known: re-score against every row
    best = np.argsort(exact, axis=1, kind="stable")[:, :k]
    s_k = np.take_along_axis(ck, best, 1).max(1)
    for i in np.flatnonzero(ck.max(1) - s_k < band):
        # compared in float64: a float32 threshold could round below s_k + band and drop a row inside the band
        inside = torch.nonzero(keys[i].to(torch.float64) <= float(s_k[i] + band[i])).flatten().cpu().numpy()
        cols = np.union1d(inside, cand[i])
        ctx_i = {name: value[i : i + 1] for name, value in ctx.items()}
        d = dist.exact(qb.take(np.array([i])), ref, cols[None, :], ctx_i)[0]
        keep = np.argsort(d, kind="stable")[: cand.shape[1]]
        cand[i], exact[i] = cols[keep], d[keep]


def knn(
    query: MixedMatrix,
    reference: MixedMatrix,
    k: int = 2,
    distance: str | Distance = "tabcutmix",
    *,
    block_rows: int | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    device: str | torch.device = "cpu",
    dedupe: bool = True,
    progress: Callable[[int], None] | None = None,
    kernel: str = "auto",
) -> Neighbors:
    """Exact k nearest reference rows for every query row.

    query, reference: encoded with the same columns (the reference's category codes).
    k: neighbours per query row (the distance-ratio audit uses 2).
    distance: a preset name from `DISTANCES` or a `Distance` instance; fitted on `reference` when it has
        unfitted parameters.
    block_rows: query rows per block; default chosen so one (block_rows x n_reference) float64 buffer is about
        `block_bytes`. The result does not depend on it.
    dedupe: collapse identical reference rows before searching (exact ties; faster with duplicates).
    progress: called with the number of query rows finished after each block.
    kernel: "auto" uses the compiled scan for `tabcutmix` and `l2` on the CPU when a C compiler is there (compiled
        once into $ROTE_CACHE_DIR or ~/.cache/rote), else torch; "torch" always the torch path; "compiled"
        requires the scan. The results are the same either way (among equally near rows the index may differ).
    Returns `Neighbors` (indices, distances), each (n_query, k), nearest first.
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if (
        query.numeric.shape[1] != reference.numeric.shape[1]
        or query.categorical.shape[1] != reference.categorical.shape[1]
    ):
        raise ConfigError("query and reference must have the same numeric and categorical columns")
    if block_rows is not None and block_rows < 1:
        raise ConfigError(f"block_rows must be at least 1, got {block_rows}")
    if kernel not in ("auto", "torch", "compiled"):
        raise ConfigError(f"`kernel` must be 'auto', 'torch' or 'compiled', got {kernel!r}")
    dev = resolve_device(device)
    dist = get_distance(distance).fit(reference)
    n_q = query.n_rows
    indices = np.full((n_q, k), -1, np.int64)
    distances = np.full((n_q, k), np.inf)
    if n_q == 0 or reference.n_rows == 0:
        return Neighbors(indices, distances)

    if dedupe:
        first, inverse, counts = _unique_rows(reference)
    else:
        first, inverse, counts = (
            np.arange(reference.n_rows),
            np.arange(reference.n_rows),
            np.ones(reference.n_rows, np.int64),
        )
    ref_u = reference.take(first)
    occ = _occurrences(inverse, first.size, k)
    n_u = first.size

    n_cand = min(n_u, k + REFINE_SLACK)
    scan = _scan_for(dist, ref_u, n_cand, dev, kernel)
    prep = dist.prepare(ref_u, dev) if scan is None else None
    rows = block_rows or (SCAN_BLOCK_ROWS if scan is not None else max(1, min(n_q, block_bytes // (8 * n_u))))
    with torch.inference_mode():
        for start in range(0, n_q, rows):
            stop = min(n_q, start + rows)
            qb = query.take(np.arange(start, stop))
            if scan is not None:
                cand, ctx, skey, smis, bad_rows = scan(qb)
                with np.errstate(over="ignore", invalid="ignore"):
                    exact = dist.exact(qb, ref_u, cand, ctx)
                if n_cand < n_u:
                    bad_rows |= ~scan.certified(skey, smis, exact, k)
                bad = np.flatnonzero(bad_rows)
            else:
                keys, ctx = dist.screen(qb, prep, dev)
                # A screened key overflows (inf, or nan from inf - inf) only for values near the float limit;
                # those rows are ranked by the exact distance against every reference row instead.
                # (a row sum is non-finite iff a key is inf or nan, or the sum overflows, which only errs on the
                # safe side; torch.isfinite over the whole block costs 20x more)
                bad = np.flatnonzero((~torch.isfinite(keys.sum(1))).cpu().numpy())
                if bad.size:
                    keys[torch.as_tensor(bad, device=keys.device)] = 0.0
                cand_t = _smallest(keys, n_cand)
                cand = cand_t.cpu().numpy()
                exact = dist.exact(qb, ref_u, cand, ctx)
                if n_cand < n_u:
                    _certify(dist, qb, ref_u, prep, keys, cand_t, cand, exact, ctx, k)
            for i in bad:
                ctx_i = {name: value[i : i + 1] for name, value in ctx.items()}
                d = dist.exact(qb.take(np.array([i])), ref_u, np.arange(n_u)[None, :], ctx_i)[0]
                keep = np.argsort(d, kind="stable")[:n_cand]
                cand[i], exact[i] = keep, d[keep]
            order = np.argsort(exact, axis=1, kind="stable")
            cand = np.take_along_axis(cand, order, 1)
            cvals = np.take_along_axis(exact, order, 1)
            indices[start:stop], distances[start:stop] = _expand_duplicates(cand, cvals, counts, occ, k)
            if progress is not None:
                progress(stop - start)
    return Neighbors(indices, distances)
