"""Membership-inference scoring on score arrays: ROC, AUC, TPR at fixed FPR, attacker advantage, and the token
log-probability statistics of the text attacks (loss, zlib, min-k%, min-k%++, reference model).

Convention everywhere in rote: a HIGHER score means "more likely a member" (label 1). MIMIR's scores are "lower means
member" and it negates them before the ROC; ours are already negated, so AUCs agree.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Sequence

import numpy as np

from rote.core.errors import ConfigError
from rote.core.stats import Interval, auc_ci, bootstrap_ci


def _check(scores: Any, labels: Any, sample_weight: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if len(s) != len(y):
        raise ConfigError(f"scores has {len(s)} entries but labels has {len(y)}; pass one label per score")
    if not np.isin(y, (0, 1, True, False)).all():
        raise ConfigError("labels must be 0/1 (1 = member); got values " + ", ".join(map(str, np.unique(y)[:5])))
    if np.isnan(s).any():
        raise ConfigError(
            f"scores contain {int(np.isnan(s).sum())} NaN values (first at index "
            f"{int(np.flatnonzero(np.isnan(s))[0])}); drop or impute them before scoring"
        )
    w = np.ones(len(s)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
    if len(w) != len(s) or (w < 0).any():
        raise ConfigError("sample_weight must be non-negative with one weight per score")
    return s, y.astype(bool), w


def roc_curve(scores: Any, labels: Any, sample_weight: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of `scores` (higher = member) against 0/1 `labels`.

    Returns (fpr, tpr, thresholds), each (m + 1,): one point per distinct score (descending), preceded by (0, 0) at
    threshold +inf. Tied scores form one point, so the trapezoid area gives ties half credit.
    """
    s, y, w = _check(scores, labels, sample_weight)
    pos, neg = w[y].sum(), w[~y].sum()
    if pos == 0 or neg == 0:
        raise ConfigError(
            f"the ROC needs both members and non-members; got {int(y.sum())} members and "
            f"{int((~y).sum())} non-members (with positive weight)"
        )
    order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    tp = np.cumsum(w * y)
    fp = np.cumsum(w * ~y)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last index of each run of equal scores
    fpr = np.r_[0.0, fp[last] / neg]
    tpr = np.r_[0.0, tp[last] / pos]
    return fpr, tpr, np.r_[np.inf, s[last]]


def roc_auc(scores: Any, labels: Any, sample_weight: Any = None) -> float:
    """Area under the ROC curve = P(member score > non-member score) + P(tie) / 2."""
    fpr, tpr, _ = roc_curve(scores, labels, sample_weight)
    return float(np.trapezoid(tpr, fpr))


def tpr_at_fpr(scores: Any, labels: Any, fpr: float = 0.01, sample_weight: Any = None) -> float:
    """Highest TPR over thresholds whose FPR is strictly below `fpr` (the low-FPR metric of LiRA and MIMIR, which
    both take `tpr[np.where(fpr < target)[0][-1]]`; rote used `<=` before, which differs where a threshold lands
    exactly on the target). Equal to MIMIR's rule on sklearn's `roc_curve(..., drop_intermediate=False)`; with
    sklearn's default the dropped collinear thresholds can make MIMIR's value lower.

    With n non-members the attainable FPRs are 0, 1/n, 2/n, ...: when 1/n >= `fpr`, only FPR 0 is below the target
    and the value is the TPR at zero false positives (see `fpr_resolvable`)."""
    if not 0 < fpr <= 1:
        raise ConfigError(f"`fpr` must be in (0, 1], got {fpr}")
    f, t, _ = roc_curve(scores, labels, sample_weight)
    return float(t[f < fpr].max())


def fpr_resolvable(n_nonmembers: int, fpr: float) -> bool:
    """Whether `n_nonmembers` non-members can measure a TPR at FPR `fpr`: True when 1 / n_nonmembers < fpr, so at
    least one false positive is allowed below the target. Otherwise TPR at `fpr` is the TPR at zero false positives."""
    return n_nonmembers > 0 and 1.0 / n_nonmembers < fpr


def attacker_advantage(scores: Any, labels: Any, sample_weight: Any = None) -> float:
    """max over thresholds of TPR - FPR (Yeom et al.'s membership advantage)."""
    f, t, _ = roc_curve(scores, labels, sample_weight)
    return float((t - f).max())


@dataclasses.dataclass(frozen=True)
class MembershipMetrics:
    """Summary of one attack: AUC with its DeLong interval, TPR at each FPR (strict `< fpr`), advantage; bootstrap
    intervals of the TPRs when bootstrapped. `tpr_resolved[f]` is False where 1/n_nonmembers >= f: the TPR given is
    then the TPR at zero false positives, not at f."""

    auc: float
    tpr_at: dict[float, float]
    advantage: float
    n_members: int
    n_nonmembers: int
    auc_interval: Interval | None = None
    tpr_intervals: dict[float, Interval] | None = None
    tpr_resolved: dict[float, bool] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "auc": self.auc,
            "advantage": self.advantage,
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
        }
        for f, v in self.tpr_at.items():
            out[f"tpr_at_{f:g}_fpr"] = v
        for f, ok in (self.tpr_resolved or {}).items():
            out[f"tpr_at_{f:g}_fpr_resolved"] = bool(ok)
        if self.auc_interval is not None:
            out["auc_interval"] = self.auc_interval.to_dict()
        for f, iv in (self.tpr_intervals or {}).items():
            out[f"tpr_at_{f:g}_fpr_interval"] = iv.to_dict()
        return out


def membership_metrics(
    scores: Any,
    labels: Any,
    fprs: Sequence[float] = (0.001, 0.01, 0.1),
    n_boot: int = 0,
    level: float = 0.95,
    seed: int = 0,
) -> MembershipMetrics:
    """AUC with its DeLong interval (`rote.core.stats.auc_ci`, which stays wide at AUC 1 where a bootstrap gives
    [1, 1]), TPR at each of `fprs` (strict `<`, as MIMIR and LiRA) and advantage; with `n_boot` > 0, bootstrap
    intervals of the TPRs resampling members and non-members separately (so every replicate has both)."""
    s, y, _ = _check(scores, labels)
    auc = roc_auc(s, y)
    if len(s) and (y.all() or not y.any()):
        raise ConfigError("membership metrics need both members and non-members")
    tprs = {float(f): tpr_at_fpr(s, y, f) for f in fprs}
    n_non = int((~y).sum())
    resolved = {f: fpr_resolvable(n_non, f) for f in tprs}
    auc_iv = auc_ci(s[y], s[~y], level=level)
    tpr_ivs = None
    if n_boot > 0:
        tpr_ivs = {
            f: bootstrap_ci(
                lambda a, b, f=f: tpr_at_fpr(a, b, f), s, y, n_boot=n_boot, level=level, seed=seed, strata=y
            )
            for f in tprs
        }
    return MembershipMetrics(auc, tprs, attacker_advantage(s, y), int(y.sum()), n_non, auc_iv, tpr_ivs, resolved)


# ------------------------------------------------------------------------------- token log-probability statistics
# Each takes the (T-1,) natural-log probabilities of a text's tokens under the model and returns one float where
# higher means "more likely a member" (MIMIR's scores negated).


def _lp(logprobs: Any) -> np.ndarray:
    lp = np.asarray(logprobs, dtype=np.float64).ravel()
    if len(lp) == 0:
        raise ConfigError("a text needs at least two tokens to be scored (no token log-probabilities given)")
    return lp


def loss_score(logprobs: Any) -> float:
    """Mean token log-likelihood (= minus the LM loss). Yeom et al. / MIMIR `loss`."""
    return float(_lp(logprobs).mean())


def zlib_score(logprobs: Any, text: str) -> float:
    """Mean log-likelihood divided by the zlib-compressed byte length of the text (MIMIR `zlib`, negated)."""
    n = len(zlib.compress(text.encode("utf-8")))
    return float(_lp(logprobs).mean() / n)


def _lowest_k_mean(values: np.ndarray, k: float) -> float:
    if not 0 < k <= 1:
        raise ConfigError(f"k must be a fraction in (0, 1], got {k}")
    m = max(1, int(len(values) * k))
    return float(np.partition(values, m - 1)[:m].mean())


def min_k_score(logprobs: Any, k: float = 0.2) -> float:
    """Mean of the lowest k-fraction of token log-probs (Shi et al.'s Min-K% Prob; at least one token)."""
    return _lowest_k_mean(_lp(logprobs), k)


def min_k_plus_plus_score(logprobs: Any, mean: Any, std: Any, k: float = 0.2) -> float:
    """Min-K%++ (Zhang et al.): per token (log p(x_t) - mu_t) / sigma_t, with mu_t and sigma_t the mean and std of
    log p(z) for z drawn from the model's next-token distribution; mean of the lowest k-fraction."""
    lp = _lp(logprobs)
    mu, sd = np.asarray(mean, np.float64).ravel(), np.asarray(std, np.float64).ravel()
    if len(mu) != len(lp) or len(sd) != len(lp):
        raise ConfigError("min-k%++ needs one mean and one std per token log-prob")
    z = (lp - mu) / np.maximum(sd, 1e-12)
    return _lowest_k_mean(z, k)


def recall_score(logprobs: Any, conditional_logprobs: Any) -> float:
    """ReCaLL (Xie et al. 2024; MIMIR `recall`): LL(x | P) / LL(x), the mean log-likelihood of the text after a
    non-member prefix P over its mean log-likelihood alone. Both are negative; members lose more likelihood when
    conditioned on non-member text, so the ratio is larger for members: higher = member, as MIMIR's value."""
    ll = float(_lp(logprobs).mean())
    if ll == 0:
        return 1.0
    return float(_lp(conditional_logprobs).mean() / ll)


def neighbourhood_score(logprobs: Any, neighbour_logprobs: Sequence[Any]) -> float:
    """Neighbourhood comparison (Mattern et al. 2023; MIMIR `ne`): mean log-likelihood of the text minus the mean
    over its neighbours (perturbed copies of the text) of theirs; a member is more likely than texts near it."""
    if len(neighbour_logprobs) == 0:
        raise ConfigError("the neighbourhood attack needs at least one neighbour per text")
    return float(_lp(logprobs).mean() - np.mean([_lp(n).mean() for n in neighbour_logprobs]))


def reference_score(logprobs: Any, ref_logprobs: Any) -> float:
    """Target mean log-likelihood minus the reference model's (Carlini et al.'s reference attack; MIMIR `ref`)."""
    return float(_lp(logprobs).mean() - _lp(ref_logprobs).mean())


def lira_offline_score(target_stat: Any, out_stats: Any) -> np.ndarray:
    """Offline LiRA (Carlini et al. 2022): per sample, the one-sided Gaussian likelihood that the target model's
    statistic exceeds those of reference models that did not train on it.

    Args:
        target_stat: (n,) logit-scaled confidence of each sample under the target model.
        out_stats: (n, r) the same statistic under r reference models trained without the sample.
    Returns (n,) scores, higher = member: log P(Z <= target) under N(mean_out, std_out).
    """
    from scipy import stats

    t = np.asarray(target_stat, dtype=np.float64)
    out = np.asarray(out_stats, dtype=np.float64)
    if out.ndim != 2 or out.shape[0] != len(t):
        raise ConfigError(f"out_stats must be (n, r) with n = {len(t)}; got shape {out.shape}")
    mu = out.mean(axis=1)
    sd = out.std(axis=1) if out.shape[1] > 1 else np.ones(len(t))
    return stats.norm.logcdf(t, loc=mu, scale=np.maximum(sd, 1e-12))


def logit_confidence(prob_true_class: Any, eps: float = 1e-12) -> np.ndarray:
    """log(p / (1 - p)) of the true-class probability: the statistic LiRA fits Gaussians to."""
    p = np.clip(np.asarray(prob_true_class, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


__all__ = [
    "MembershipMetrics",
    "attacker_advantage",
    "roc_auc",
    "roc_curve",
    "tpr_at_fpr",
    "membership_metrics",
    "loss_score",
    "zlib_score",
    "min_k_score",
    "min_k_plus_plus_score",
    "reference_score",
    "recall_score",
    "neighbourhood_score",
    "fpr_resolvable",
    "lira_offline_score",
    "logit_confidence",
]
