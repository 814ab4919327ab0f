"""The synthetic in-context classification tasks, as the authors' code builds them (tensors, no files).

Two conventions (docs/icl.md):

- `BinaryTask` (Nguyen and Reddy, ICLR 2025, `SequenceGMM` in main_icl.py): K class means mu_k ~ N(0, I_D/D)
  (D = 63), a balanced random map class -> label in {0, 1} (K/2 classes per label), N tokens per sequence whose
  classes are drawn uniformly with replacement; the last token is the query and, if its class is absent from the
  first N - 1 tokens, it is redrawn from a class that is present (the answer is always in context). A token is
  x (+) onehot(label) (D + 2 = 65 dims), the query's label slot zeroed; the target is y = +-1. `K=None` is the
  K -> infinity mode: every sequence gets N - 1 fresh class means (never repeated, so nothing can be memorized).
- `ReddyTask` (Reddy, ICLR 2024): L label *vectors* mu_l ~ N(0, I_D/D), class k has label k mod L (K a multiple of
  L), sequences x_1, l_1, ..., x_N, l_N, x_q (2N + 1 tokens), each token a one-hot positional code of size
  2 N_max + 1 placed at a random shift, concatenated with its D-dim content. With probability p_B a sequence is
  bursty (N/B classes repeated B times, the query one of them), otherwise its items and the query are i.i.d. from
  the rank-frequency law P(k) ~ k^-alpha; with probability p_C it uses K_c novel classes instead of the K trained.

Evaluation sets (`eval_sets`): ICL (novel classes, the answer in context), ICL2 (trained classes with every label
swapped, so only the context gives the answer), IWL (trained classes, the query's class absent from the context).

Items are x = (mu + eps * eta) / sqrt(1 + eps^2), eta ~ N(0, I_D/D) (eps = 0 in the 2025 paper's runs).
Every sampler takes a `torch.Generator`; the same generator state gives the same batch on CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from rote.core.errors import ConfigError

__all__ = ["BinaryTask", "ReddyTask", "Batch", "class_means", "eval_sets", "make_task"]

TRAIN_MEANS_SEED = 10  # the authors' code draws the training class means once with rng seed 10
TEST_MEANS_SEED = 20_000  # novel class means for the ICL test set (a different seed)


@dataclass(frozen=True)
class Batch:
    """x: (B, T, C) float tokens; y: (B,) targets (+-1 floats for the binary task, label ids for Reddy's)."""

    x: torch.Tensor
    y: torch.Tensor

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.x.to(device), self.y.to(device))


def class_means(k: int, d: int, seed: int) -> torch.Tensor:
    """(k, d) class means, i.i.d. N(0, 1/d) entries, from their own generator seeded with `seed`."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(k, d, generator=g) / math.sqrt(d)


def _items(means: torch.Tensor, eps: float, g: torch.Generator) -> torch.Tensor:
    if eps == 0:
        return means
    return (means + eps * torch.randn(means.shape, generator=g) / math.sqrt(means.shape[-1])) / math.sqrt(1 + eps**2)


def _check_int(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < low:
        raise ConfigError(f"`{name}` must be an integer >= {low}, got {value}")
    return int(value)


# ---------------------------------------------------------------------------------------------- binary (2025)


@dataclass(frozen=True)
class BinaryTask:
    """The binary task of Nguyen and Reddy (2025). K: number of training classes (even; None = K -> infinity);
    N: tokens per sequence including the query; D: item dimension; eps: within-class noise; equalize: every
    sequence holds exactly N/2 tokens of each label (their Fig. 6E / A8 condition; N must be even);
    means_seed: seed of the training class means (the authors fix it at 10, shared by every model seed)."""

    K: int | None
    N: int
    D: int = 63
    eps: float = 0.0
    equalize: bool = False
    means_seed: int = TRAIN_MEANS_SEED
    L: int = field(default=2, init=False)

    def __post_init__(self) -> None:
        _check_int("N", self.N, 2)
        _check_int("D", self.D, 1)
        if self.K is not None:
            _check_int("K", self.K, 2)
            if self.K % self.L:
                raise ConfigError(
                    f"`K` must be a multiple of L = {self.L} (a balanced class -> label map), got {self.K}"
                )
        if self.eps < 0:
            raise ConfigError(f"`eps` must be >= 0, got {self.eps}")
        if self.equalize and self.N % 2:
            raise ConfigError(f"`N` must be even to equalize label counts (N/2 of each label), got {self.N}")

    @property
    def dim(self) -> int:
        return self.D + self.L

    @property
    def infinite(self) -> bool:
        return self.K is None

    def means(self) -> torch.Tensor:
        """(K, D) training class means."""
        if self.K is None:
            raise ConfigError("the K -> infinity task has no fixed class means")
        return class_means(self.K, self.D, self.means_seed)

    def labels(self, k: int | None = None, seed: int | None = None) -> torch.Tensor:
        """(K,) balanced label map in {0, 1}: K/2 classes per label, shuffled (seeded like the means)."""
        k = self.K if k is None else k
        g = torch.Generator().manual_seed(int(self.means_seed if seed is None else seed) + 1)
        return (torch.arange(k) % 2)[torch.randperm(k, generator=g)]

    def tokens(self, items: torch.Tensor, labels: torch.Tensor) -> Batch:
        """items (B, N, D), labels (B, N) in {0, 1} (last = query) -> Batch of (B, N, D + 2) tokens, y = +-1."""
        onehot = torch.nn.functional.one_hot(labels.long(), 2).to(items.dtype)
        onehot[:, -1] = 0  # the query's label is what the model predicts
        return Batch(torch.cat([items, onehot], dim=-1), 2.0 * labels[:, -1].to(items.dtype) - 1.0)

    def sample_indices(self, n: int, k: int, g: torch.Generator, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(n, N) class indices in [0, k): uniform with replacement, the query's class guaranteed in context.
        With `equalize`, positions get labels N/2 each (a random permutation), then classes of that label."""
        if self.equalize:
            assert labels is not None
            by_label = [torch.nonzero(labels == lab).flatten() for lab in (0, 1)]
            pos = torch.rand(n, self.N, generator=g).argsort(dim=1) < self.N // 2  # True: label 1, N/2 of them
            i0 = by_label[0][torch.randint(len(by_label[0]), (n, self.N), generator=g)]
            i1 = by_label[1][torch.randint(len(by_label[1]), (n, self.N), generator=g)]
            idx = torch.where(pos, i1, i0)
        else:
            idx = torch.randint(k, (n, self.N), generator=g)
        ctx, q = idx[:, :-1], idx[:, -1]
        absent = ~(ctx == q[:, None]).any(dim=1)
        if absent.any():
            rows = torch.nonzero(absent).flatten()
            if self.equalize:  # redraw among context tokens with the query's label: counts stay N/2 each
                same = labels[ctx[rows]] == labels[q[rows]][:, None]  # (r, N-1), never all False (N/2 >= 1)
                pick = torch.multinomial(same.float(), 1, generator=g).flatten()
            else:
                pick = torch.randint(self.N - 1, (len(rows),), generator=g)
            idx[rows, -1] = ctx[rows, pick]
        return idx

    def sample_indices_many(
        self, n: int, k: int, gens: list[torch.Generator], labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(M, n, N) class indices, row m exactly `sample_indices(n, k, gens[m], labels)`: the same draws from each
        generator in the same order (the bulk draw, then the redraws of absent queries), with the checks and the
        repair done for all M at once instead of in M rounds of small operations."""
        if self.equalize:
            return torch.stack([self.sample_indices(n, k, g, labels) for g in gens])
        idx = torch.stack([torch.randint(k, (n, self.N), generator=g) for g in gens])  # (M, n, N)
        ctx, q = idx[..., :-1], idx[..., -1]
        absent = ~(ctx == q[..., None]).any(dim=-1)  # (M, n)
        counts = absent.sum(dim=1).tolist()
        picks = [torch.randint(self.N - 1, (c,), generator=g) for g, c in zip(gens, counts) if c]
        if picks:
            m, rows = torch.nonzero(absent, as_tuple=True)  # model-major, rows ascending: the order of `picks`
            idx[m, rows, -1] = ctx[m, rows, torch.cat(picks)]
        return idx

    def sample(self, n: int, g: torch.Generator, means: torch.Tensor | None = None) -> Batch:
        """n training sequences. `means`: (K, D) training means (pass them to avoid redrawing; None: self.means())."""
        if self.K is None:
            return self._sample_infinite(n, g)
        means = self.means() if means is None else means
        labels = self.labels()
        idx = self.sample_indices(n, self.K, g, labels)
        return self.tokens(_items(means[idx], self.eps, g), labels[idx])

    def _sample_infinite(self, n: int, g: torch.Generator) -> Batch:
        ctx = torch.randn(n, self.N - 1, self.D, generator=g) / math.sqrt(self.D)  # fresh classes, all distinct
        lab = torch.randint(2, (n, self.N - 1), generator=g)
        if self.equalize:
            # N/2 ones among the N tokens: the query copies a context token, so fix the counts on all N
            perm = torch.rand(n, self.N, generator=g).argsort(dim=1) < self.N // 2
            full_lab = perm.long()
            # the query (last) takes the label of a context token with the same label
            lab = full_lab[:, :-1]
            same = lab == full_lab[:, -1:]
            pick = torch.multinomial(same.float(), 1, generator=g).flatten()
        else:
            pick = torch.randint(self.N - 1, (n,), generator=g)
        rows = torch.arange(n)
        items = torch.cat([ctx, ctx[rows, pick][:, None]], dim=1)
        labels = torch.cat([lab, lab[rows, pick][:, None]], dim=1)
        return self.tokens(_items(items, self.eps, g), labels)

    def eval_sets(self, n: int = 2000, seed: int = 1) -> dict[str, Batch]:
        """ICL: novel means (K_test = min(20000, K) classes, a fresh balanced label map); ICL2: training classes with
        labels swapped; IWL: training classes, the query's class absent from the context (context i.i.d. from the
        other K - 1 classes; the authors draw it without replacement, which differs only by rare repeats)."""
        g = torch.Generator().manual_seed(int(seed))
        k_test = 20_000 if self.K is None else min(20_000, self.K)
        novel = class_means(k_test, self.D, TEST_MEANS_SEED)
        lab_novel = self.labels(k_test, seed=TEST_MEANS_SEED)
        idx = self.sample_indices(n, k_test, g, lab_novel)
        out = {"icl": self.tokens(_items(novel[idx], self.eps, g), lab_novel[idx])}
        if self.K is None:
            return out
        means, labels = self.means(), self.labels()
        idx = self.sample_indices(n, self.K, g, 1 - labels)
        out["icl2"] = self.tokens(_items(means[idx], self.eps, g), 1 - labels[idx])
        q = torch.randint(self.K, (n,), generator=g)
        ctx = torch.randint(self.K - 1, (n, self.N - 1), generator=g)
        ctx = ctx + (ctx >= q[:, None]).long()  # skip the query's class
        idx = torch.cat([ctx, q[:, None]], dim=1)
        out["iwl"] = self.tokens(_items(means[idx], self.eps, g), labels[idx])
        return out


# ---------------------------------------------------------------------------------------------- Reddy (2024)


@dataclass(frozen=True)
class ReddyTask:
    """The task of Reddy (ICLR 2024). K classes (a multiple of L), L label vectors, N item-label pairs then the
    query, D content dims, B burstiness (copies of each class in a bursty context; 0 = i.i.d.), p_B share of bursty
    sequences, alpha Zipf exponent of the class frequencies, p_C share of sequences from K_c novel classes,
    n_max: the positional code has 2 n_max + 1 slots and each sequence starts at a random shift."""

    K: int = 512
    N: int = 8
    L: int = 32
    D: int = 63
    B: int = 2
    p_B: float = 1.0
    alpha: float = 0.0
    p_C: float = 0.0
    K_c: int = 128
    eps: float = 0.1
    n_max: int = 32
    means_seed: int = TRAIN_MEANS_SEED

    def __post_init__(self) -> None:
        _check_int("L", self.L, 2)
        _check_int("K", self.K, 1)
        _check_int("N", self.N, 1)
        _check_int("D", self.D, 1)
        _check_int("B", self.B, 0)
        if self.K % self.L:
            raise ConfigError(f"`K` must be a multiple of `L` = {self.L} (class k has label k mod L), got {self.K}")
        if self.B > 0 and (self.N < self.B or self.N % self.B):
            raise ConfigError(
                f"`N` = {self.N} is too small or not a multiple of the burstiness `B` = {self.B}: a bursty context "
                f"holds N/B classes {self.B} times each; use N >= B with N % B == 0"
            )
        for name in ("p_B", "p_C"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ConfigError(f"`{name}` must be in [0, 1], got {v}")
        if self.p_B > 0 and self.B == 0:
            raise ConfigError("`p_B` > 0 needs a burstiness `B` >= 1 (B = 0 means i.i.d. contexts)")
        if self.alpha < 0:
            raise ConfigError(f"`alpha` must be >= 0, got {self.alpha}")
        if self.n_max < self.N:
            raise ConfigError(f"`n_max` must be >= N = {self.N}, got {self.n_max}")
        if self.K_c % self.L:
            raise ConfigError(f"`K_c` must be a multiple of `L` = {self.L}, got {self.K_c}")

    @property
    def pos_dim(self) -> int:
        return 2 * self.n_max + 1

    @property
    def dim(self) -> int:
        return self.pos_dim + self.D

    def means(self) -> torch.Tensor:
        return class_means(self.K, self.D, self.means_seed)

    def label_vectors(self) -> torch.Tensor:
        return class_means(self.L, self.D, self.means_seed + 7)

    def novel_means(self) -> torch.Tensor:
        return class_means(self.K_c, self.D, TEST_MEANS_SEED)

    def zipf(self, k: int | None = None) -> torch.Tensor:
        """(k,) class probabilities P(k) ~ k^-alpha."""
        k = self.K if k is None else k
        w = torch.arange(1, k + 1, dtype=torch.float64) ** (-self.alpha)
        return (w / w.sum()).float()

    def _bursty(self, n: int, k: int, g: torch.Generator) -> torch.Tensor:
        """(n, N + 1) class indices: N/B distinct classes, B copies each, shuffled; the query is one of them."""
        m = self.N // self.B
        cls = torch.rand(n, k, generator=g).argsort(dim=1)[:, :m] if k <= 4096 else self._distinct(n, k, m, g)
        ctx = cls.repeat_interleave(self.B, dim=1)
        ctx = torch.gather(ctx, 1, torch.rand(n, self.N, generator=g).argsort(dim=1))
        q = cls[torch.arange(n), torch.randint(m, (n,), generator=g)]
        return torch.cat([ctx, q[:, None]], dim=1)

    @staticmethod
    def _distinct(n: int, k: int, m: int, g: torch.Generator) -> torch.Tensor:
        out = torch.empty(n, m, dtype=torch.long)
        for i in range(n):
            out[i] = torch.randperm(k, generator=g)[:m]
        return out

    def _iid(self, n: int, probs: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return torch.multinomial(probs.expand(n, -1), self.N + 1, replacement=True, generator=g)

    def _assemble(self, idx: torch.Tensor, means: torch.Tensor, lab: torch.Tensor, g: torch.Generator) -> Batch:
        """idx (n, N + 1) classes, lab (n, N + 1) label ids -> tokens (n, 2N + 1, pos_dim + D), y = query label."""
        n = idx.shape[0]
        lv = self.label_vectors()
        items = _items(means[idx], self.eps, g)  # (n, N + 1, D)
        content = torch.empty(n, 2 * self.N + 1, self.D)
        content[:, 0 : 2 * self.N : 2] = items[:, : self.N]
        content[:, 1 : 2 * self.N : 2] = lv[lab[:, : self.N]]
        content[:, -1] = items[:, -1]
        t = 2 * self.N + 1
        shift = torch.randint(self.pos_dim - t + 1, (n,), generator=g)
        pos = torch.nn.functional.one_hot(shift[:, None] + torch.arange(t), self.pos_dim).float()
        return Batch(torch.cat([pos, content], dim=-1), lab[:, -1].clone())

    def sample(self, n: int, g: torch.Generator, means: torch.Tensor | None = None) -> Batch:
        """n training sequences: bursty with prob p_B, novel classes with prob p_C."""
        means = self.means() if means is None else means
        novel = self.novel_means()
        bursty = torch.rand(n, generator=g) < self.p_B
        fresh = torch.rand(n, generator=g) < self.p_C
        idx_i, idx_in = self._iid(n, self.zipf(), g), self._iid(n, self.zipf(self.K_c), g)
        idx = torch.where(fresh[:, None], idx_in, idx_i)
        if self.B > 0 and bursty.any():
            idx_b, idx_bn = self._bursty(n, self.K, g), self._bursty(n, self.K_c, g)
            idx = torch.where(bursty[:, None], torch.where(fresh[:, None], idx_bn, idx_b), idx)
        # novel sequences index novel means: offset them past the K trained ones
        all_means = torch.cat([means, novel])
        idx = torch.where(fresh[:, None], idx + self.K, idx)
        lab = idx % self.L  # K and K_c are multiples of L: novel class K + j has label j mod L
        return self._assemble(idx, all_means, lab, g)

    def eval_sets(self, n: int = 2000, seed: int = 1) -> dict[str, Batch]:
        """ICL: novel classes in bursty contexts (B >= 1; B = 2 when the task is i.i.d.); ICL2: trained classes in
        bursty contexts with every label swapped l -> l + 1 mod L; IWL: trained classes, i.i.d. Zipf contexts."""
        g = torch.Generator().manual_seed(int(seed))
        bursty = self if self.B > 0 else ReddyTask(**{**self.__dict__, "B": 2 if self.N % 2 == 0 else 1})
        means, novel = self.means(), self.novel_means()
        idx = bursty._bursty(n, self.K_c, g)
        out = {"icl": self._assemble(idx, novel, idx % self.L, g)}
        idx = bursty._bursty(n, self.K, g)
        out["icl2"] = self._assemble(idx, means, (idx + 1) % self.L, g)
        idx = self._iid(n, self.zipf(), g)
        out["iwl"] = self._assemble(idx, means, idx % self.L, g)
        return out


def eval_sets(task: BinaryTask | ReddyTask, n: int = 2000, seed: int = 1) -> dict[str, Batch]:
    return task.eval_sets(n, seed)


def make_task(kind: str = "binary", **kwargs) -> BinaryTask | ReddyTask:
    """A task by name: "binary" (Nguyen and Reddy 2025) or "reddy" (Reddy 2024); kwargs are its fields."""
    if kind == "binary":
        return BinaryTask(**kwargs)
    if kind == "reddy":
        return ReddyTask(**kwargs)
    raise ConfigError(f"`task` must be 'binary' or 'reddy', got {kind!r}")
