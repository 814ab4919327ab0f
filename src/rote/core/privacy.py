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


# ------------------------------------------------------------------------------- attacks on classifier outputs
# Each takes per-example model outputs as arrays and returns (n,) scores, higher = more likely a member.


def _probs_labels(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels).ravel()
    if p.ndim != 2:
        raise ConfigError(f"`probs` must be (n, n_classes) class probabilities, got shape {p.shape}")
    if len(y) != len(p):
        raise ConfigError(f"`labels` has {len(y)} entries for {len(p)} rows of `probs`; pass one label per row")
    if len(y) and (y.min() < 0 or y.max() >= p.shape[1] or not np.issubdtype(y.dtype, np.integer)):
        raise ConfigError(
            f"`labels` must be whole numbers in [0, {p.shape[1]}) to index the {p.shape[1]} columns of `probs`; "
            f"got values from {y.min()} to {y.max()} (do the label spaces of data and model match?)"
        )
    return p, y.astype(np.int64)


def balanced_accuracy(scores: Any, labels: Any, threshold: float | None = None) -> float:
    """Balanced accuracy (TPR + TNR) / 2 of the attack "member iff score >= threshold". With `threshold=None`, the
    best over all thresholds, which equals (1 + attacker advantage) / 2 (what LiRA and ML Privacy Meter report)."""
    s, y, _ = _check(scores, labels)
    if y.all() or not y.any():
        raise ConfigError("balanced accuracy needs both members and non-members")
    if threshold is None:
        return 0.5 * (1.0 + attacker_advantage(s, y))
    pred = s >= threshold
    return float(0.5 * (pred[y].mean() + (~pred[~y]).mean()))


def loss_attack_score(probs: Any, labels: Any, eps: float = 1e-12) -> np.ndarray:
    """Yeom et al.'s loss attack: minus the cross-entropy of the true class. probs: (n, k); labels: (n,) ints."""
    p, y = _probs_labels(probs, labels)
    return np.log(np.clip(p[np.arange(len(y)), y], eps, 1.0))


def confidence_score(probs: Any, labels: Any | None = None) -> np.ndarray:
    """Confidence attack: the true-class probability, or the top probability when `labels` is None."""
    p = np.asarray(probs, dtype=np.float64)
    if labels is None:
        if p.ndim != 2:
            raise ConfigError(f"`probs` must be (n, n_classes) class probabilities, got shape {p.shape}")
        return p.max(axis=1)
    p, y = _probs_labels(p, labels)
    return p[np.arange(len(y)), y]


def entropy_score(probs: Any, labels: Any | None = None, eps: float = 1e-12) -> np.ndarray:
    """Entropy attacks: minus the Shannon entropy of the prediction (labels None), or with `labels` minus Song &
    Mittal's (2021) modified entropy  -(1 - p_y) log p_y - sum_{j != y} p_j log(1 - p_j), which, unlike the plain
    entropy, is large for a confident wrong prediction."""
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    if labels is None:
        if p.ndim != 2:
            raise ConfigError(f"`probs` must be (n, n_classes) class probabilities, got shape {p.shape}")
        return (p * np.log(p)).sum(axis=1)
    p, y = _probs_labels(p, labels)
    rows = np.arange(len(y))
    py = p[rows, y]
    other = p * np.log1p(-p)
    other[rows, y] = 0.0
    mentr = -(1 - py) * np.log(py) - other.sum(axis=1)
    return -mentr


def lira_statistic(logits: Any, labels: Any) -> np.ndarray:
    """LiRA's statistic from logits, computed stably: log(p_y / (1 - p_y)) = z_y - logsumexp_{j != y} z_j.

    logits: (..., n, k) float; labels: (n,) ints (broadcast over leading axes such as models or augmentations).
    Returns (..., n) float64."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels).ravel().astype(np.int64)
    if z.ndim < 2 or z.shape[-2] != len(y):
        raise ConfigError(f"`logits` must be (..., {len(y)}, n_classes) for {len(y)} labels, got shape {z.shape}")
    if len(y) and (y.min() < 0 or y.max() >= z.shape[-1]):
        raise ConfigError(
            f"`labels` must be in [0, {z.shape[-1]}) for logits with {z.shape[-1]} classes; got values from "
            f"{y.min()} to {y.max()} (do the label spaces of data and model match?)"
        )
    idx = np.broadcast_to(y[:, None], z.shape[:-1] + (1,))
    zy = np.take_along_axis(z, idx, axis=-1)[..., 0]
    rest = z.copy()
    np.put_along_axis(rest, idx, -np.inf, axis=-1)
    m = rest.max(axis=-1, keepdims=True)
    lse = (m + np.log(np.exp(rest - m).sum(axis=-1, keepdims=True)))[..., 0]
    return zy - lse


@dataclasses.dataclass(frozen=True)
class LiraScores:
    """LiRA scores of n candidate examples.

    scores: (n,) float, higher = member; NaN where the example was excluded.
    included: (n,) bool; n_in / n_out: (n,) ints, the shadow models that did / did not train on each example.
    n_excluded: examples with fewer than `min_models` IN (online) or OUT shadow models. message: why, or "".
    """

    scores: np.ndarray
    included: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray
    n_excluded: int
    message: str


def _gauss_logpdf(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


def lira_score_one(
    target: Any,
    in_stats: Any,
    out_stats: Any,
    *,
    online: bool = True,
    sd_in: float | None = None,
    sd_out: float | None = None,
    eps: float = 1e-6,
) -> float:
    """LiRA score of ONE example, written as the paper states it (the per-example oracle of `lira_scores`).

    target: (A,) statistic of the example under the target model, one per query augmentation.
    in_stats: (k_in, A) under shadow models that trained on it; out_stats: (k_out, A) under those that did not.
    online: mean over augmentations of log N(t; mu_in, sd_in) - log N(t; mu_out, sd_out); offline: mean over
    augmentations of log P(Z <= t), Z ~ N(mu_out, sd_out). sd_in / sd_out: fixed (global) standard deviations;
    None = the example's own (population std, ddof 0, at least `eps`).
    """
    from scipy import stats as sst

    t = np.asarray(target, dtype=np.float64).ravel()
    out = np.asarray(out_stats, dtype=np.float64).reshape(-1, len(t))
    mu_out = out.mean(axis=0)
    s_out = np.maximum(out.std(axis=0) if sd_out is None else np.full(len(t), sd_out), eps)
    if not online:
        return float(np.mean(sst.norm.logcdf(t, loc=mu_out, scale=s_out)))
    inn = np.asarray(in_stats, dtype=np.float64).reshape(-1, len(t))
    mu_in = inn.mean(axis=0)
    s_in = np.maximum(inn.std(axis=0) if sd_in is None else np.full(len(t), sd_in), eps)
    return float(np.mean(sst.norm.logpdf(t, mu_in, s_in) - sst.norm.logpdf(t, mu_out, s_out)))


def lira_scores(
    target_stats: Any,
    shadow_stats: Any,
    shadow_in: Any,
    *,
    online: bool = True,
    fix_variance: bool = False,
    min_models: int = 2,
    eps: float = 1e-6,
    shadow_used: Any = None,
) -> LiraScores:
    """LiRA (Carlini et al., S&P 2022), vectorized over examples, shadow models and query augmentations.

    target_stats: (n, A) or (n,) statistic (`lira_statistic`, the logit-scaled confidence) of each example under
        the target model, for A query augmentations (e.g. the image and its flip).
    shadow_stats: (m, n, A) or (m, n) the same under m shadow models; shadow_in: (m, n) bool, True where shadow
        model j trained on example i.
    online: Gaussians fitted to IN and OUT statistics, score = mean over augmentations of the log likelihood
        ratio; offline: only OUT statistics, score = mean over augmentations of log P(Z <= t), Z ~ N(mu_out,
        sd_out) (one-sided: a member's statistic is higher).
    fix_variance: one standard deviation for all examples (per augmentation; for IN and OUT separately): the
        pooled within-example std, the paper's advice when there are few shadow models. Carlini et al.'s code pools
        the raw statistics (between-example spread included); the within-example spread is the quantity the
        per-example fit estimates, so rote pools that.
    min_models: examples with fewer IN (online only) or OUT shadow models than this are excluded: their score is
        NaN, `included` False, and `message` counts them. Without `fix_variance` it must be >= 2 (a std needs two).
    shadow_used: optional (m, n) bool, False where shadow model j must be left out of example i's fits.
    """
    t = np.asarray(target_stats, dtype=np.float64)
    s = np.asarray(shadow_stats, dtype=np.float64)
    mask = np.asarray(shadow_in)
    if t.ndim == 1:
        t = t[:, None]
    if s.ndim == 2:
        s = s[:, :, None]
    if t.ndim != 2 or s.ndim != 3 or s.shape[1:] != t.shape:
        raise ConfigError(
            f"`shadow_stats` must be (m, n, A) with (n, A) = {t.shape} the shape of `target_stats`; got {s.shape}"
        )
    if mask.shape != s.shape[:2] or mask.dtype != bool:
        raise ConfigError(f"`shadow_in` must be a boolean (m, n) = {s.shape[:2]} array; got {mask.dtype} {mask.shape}")
    if not np.isfinite(t).all() or not np.isfinite(s).all():
        raise ConfigError("`target_stats` and `shadow_stats` must be finite (use `lira_statistic` on logits)")
    lowest = 1 if fix_variance else 2
    if not isinstance(min_models, (int, np.integer)) or min_models < lowest:
        raise ConfigError(
            f"`min_models` must be a whole number >= {lowest} ({'a std needs two models' if lowest == 2 else ''}"
            f"{'one model per side' if lowest == 1 else ''}); got {min_models!r}"
        )
    used = np.ones(mask.shape, bool) if shadow_used is None else np.asarray(shadow_used, bool)
    if used.shape != mask.shape:
        raise ConfigError(f"`shadow_used` must be a boolean {mask.shape} array like `shadow_in`; got {used.shape}")
    w_in = (mask & used)[:, :, None].astype(np.float64)  # (m, n, 1)
    w_out = (~mask & used)[:, :, None].astype(np.float64)
    n_in, n_out = (mask & used).sum(axis=0), (~mask & used).sum(axis=0)  # (n,)

    def fit(w: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        kk = np.maximum(k, 1)[:, None]
        mu = (w * s).sum(axis=0) / kk  # (n, A)
        var = (w * (s - mu) ** 2).sum(axis=0) / kk
        return mu, var, kk

    mu_out, var_out, k_out = fit(w_out, n_out)
    ok = n_out >= min_models
    if online:
        mu_in, var_in, k_in = fit(w_in, n_in)
        ok &= n_in >= min_models
    if fix_variance:
        # pooled within-example variance over included examples, per augmentation
        sd_out = np.sqrt((var_out[ok] * k_out[ok]).sum(axis=0) / max(k_out[ok].sum(), 1))[None, :]
        if online:
            sd_in = np.sqrt((var_in[ok] * k_in[ok]).sum(axis=0) / max(k_in[ok].sum(), 1))[None, :]
    else:
        sd_out = np.sqrt(var_out)
        if online:
            sd_in = np.sqrt(var_in)
    sd_out = np.maximum(sd_out, eps)
    if online:
        sd_in = np.maximum(sd_in, eps)
        per_aug = _gauss_logpdf(t, mu_in, sd_in) - _gauss_logpdf(t, mu_out, sd_out)
    else:
        from scipy import stats as sst

        per_aug = sst.norm.logcdf(t, loc=mu_out, scale=sd_out)
    scores = np.where(ok, per_aug.mean(axis=1), np.nan)
    n_bad = int((~ok).sum())
    message = ""
    if n_bad:
        side = "IN or OUT" if online else "OUT"
        message = (
            f"{n_bad} of {len(ok)} examples have fewer than {min_models} {side} shadow models and were excluded; "
            "train more shadow models or lower `min_models`"
        )
    return LiraScores(scores, ok, n_in, n_out, n_bad, message)


def lira_leave_one_out(
    stats: Any,
    in_mask: Any,
    *,
    online: bool = True,
    fix_variance: bool = False,
    min_models: int = 2,
    balance: bool = True,
) -> tuple[np.ndarray, np.ndarray, int, str]:
    """Carlini et al.'s evaluation: each of m models in turn is the target and the other m - 1 its shadow models.

    stats: (m, n, A) LiRA statistics of n examples under m models; in_mask: (m, n) bool, which models trained on
    which example. balance (online): per (target, example), use as many IN as OUT shadow models (the first ones in
    model order). With few models and a design where every example is IN exactly half of them, leaving the target
    out leaves one more OUT than IN shadow for members and the reverse for non-members; the side fitted from fewer
    models lies farther from a fresh statistic on average, which alone pushes the AUC below 0.5 (for 8 models and
    no signal, to about 0.47); equal counts remove that bias.
    Returns (scores, labels, n_excluded, message): scores and 0/1 labels of the included (target, example) pairs,
    pooled over targets (1-d), the number of excluded pairs and a message about them.
    """
    s = np.asarray(stats, dtype=np.float64)
    mask = np.asarray(in_mask)
    if s.ndim == 2:
        s = s[:, :, None]
    if s.ndim != 3 or mask.shape != s.shape[:2] or mask.dtype != bool:
        raise ConfigError(
            f"`stats` must be (m, n, A) and `in_mask` a boolean (m, n) array; got {s.shape} and {mask.shape}"
        )
    if s.shape[0] < 3:
        raise ConfigError(f"leave-one-out LiRA needs at least 3 models (a target and 2 shadows); got {s.shape[0]}")
    scores, labels, bad = [], [], 0
    for k in range(s.shape[0]):
        rest = np.arange(s.shape[0]) != k
        used = None
        if balance and online:
            m_in = mask[rest]
            keep = np.minimum(m_in.sum(0), (~m_in).sum(0))  # (n,)
            used = (m_in & (np.cumsum(m_in, 0) <= keep)) | (~m_in & (np.cumsum(~m_in, 0) <= keep))
        r = lira_scores(
            s[k],
            s[rest],
            mask[rest],
            online=online,
            fix_variance=fix_variance,
            min_models=min_models,
            shadow_used=used,
        )
        scores.append(r.scores[r.included])
        labels.append(mask[k][r.included].astype(np.int64))
        bad += r.n_excluded
    message = ""
    if bad:
        message = (
            f"{bad} of {s.shape[0] * s.shape[1]} (target, example) pairs had too few IN/OUT shadow models "
            f"(< {min_models}) and were excluded; train more models or lower `min_models`"
        )
    return np.concatenate(scores), np.concatenate(labels), bad, message


def rmia_scores(
    target_probs: Any,
    ref_probs: Any,
    pop_target_probs: Any,
    pop_ref_probs: Any,
    *,
    gamma: float = 1.0,
    offline_a: float | None = None,
) -> np.ndarray:
    """RMIA (Zarifzadeh et al., ICML 2024): the share of population examples z that x dominates,
    score(x) = mean_z [ LR(x, z) >= gamma ],  LR(x, z) = (p(x | target) / p(x)) / (p(z | target) / p(z)),
    with p(.) the mean true-class probability over reference models.

    target_probs: (n,) true-class probability of each candidate under the target; ref_probs: (r, n) under r
    reference models (online: half IN, half OUT on average; offline: all OUT). pop_target_probs: (z,) and
    pop_ref_probs: (r, z) the same for population examples (non-members of every model). offline_a: with OUT-only
    references, p(x) = ((1 + a) p_out(x) + (1 - a)) / 2 approximates the mean over IN and OUT models (the paper's
    offline rule; a is tuned per dataset). Sorted counting: O((n + z) log z). Returns (n,) in [0, 1].
    """
    if not gamma > 0:
        raise ConfigError(f"`gamma` must be > 0, got {gamma}")
    if offline_a is not None and not 0 <= offline_a <= 1:
        raise ConfigError(f"`offline_a` must be in [0, 1], got {offline_a}")
    px = np.asarray(target_probs, np.float64).ravel()
    pz = np.asarray(pop_target_probs, np.float64).ravel()
    rx = np.asarray(ref_probs, np.float64)
    rz = np.asarray(pop_ref_probs, np.float64)
    if rx.ndim != 2 or rx.shape[1] != len(px) or rz.ndim != 2 or rz.shape != (rx.shape[0], len(pz)):
        raise ConfigError(
            f"`ref_probs` must be (r, {len(px)}) and `pop_ref_probs` (r, {len(pz)}); got {rx.shape} and {rz.shape}"
        )
    if len(pz) == 0:
        raise ConfigError("RMIA needs at least one population example (`pop_target_probs` is empty)")

    def marginal(r: np.ndarray) -> np.ndarray:
        m = r.mean(axis=0)
        return m if offline_a is None else 0.5 * ((1 + offline_a) * m + (1 - offline_a))

    tiny = 1e-30
    ratio_x = px / np.maximum(marginal(rx), tiny)
    ratio_z = np.sort(pz / np.maximum(marginal(rz), tiny))
    # LR(x, z) >= gamma  <=>  ratio_z <= ratio_x / gamma
    return np.searchsorted(ratio_z, ratio_x / gamma, side="right") / len(ratio_z)


__all__ = [
    "LiraScores",
    "balanced_accuracy",
    "loss_attack_score",
    "confidence_score",
    "entropy_score",
    "lira_statistic",
    "lira_score_one",
    "lira_scores",
    "lira_leave_one_out",
    "rmia_scores",
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


# ------------------------------------------------------------------------------- Feldman memorization (shadow models)


@dataclasses.dataclass(frozen=True)
class FeldmanEstimate:
    """Feldman's (2020) label memorization of n examples, estimated from m models trained on random subsets.

    memorization: (n,) p_in - p_out, in [-1, 1]; NaN where excluded. p_in / p_out: (n,) accuracy on the example of
    the models that did / did not train on it (NaN where that side has no model). n_in / n_out: (n,) ints.
    included: (n,) bool; n_excluded: examples with fewer than `min_models` IN or OUT models; message: why, or "".
    low / high: (n,) Newcombe hybrid-score interval of the difference at `level` (None when no level was asked).
    """

    memorization: np.ndarray
    p_in: np.ndarray
    p_out: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray
    included: np.ndarray
    n_excluded: int
    message: str
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    level: float | None = None


def _wilson(k: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized Wilson score bounds of k / n (NaN where n = 0); `rote.core.stats.binomial_ci(method="wilson")`."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return np.maximum(0.0, centre - half), np.minimum(1.0, centre + half)


def feldman_memorization(
    correct: Any,
    in_mask: Any,
    *,
    min_models: int = 1,
    level: float | None = None,
) -> FeldmanEstimate:
    """Feldman's memorization estimate, mem(i) = P[correct on i | i in training] - P[correct on i | i not in
    training], from models that are already trained on random subsets (e.g. LiRA's shadow models; Feldman & Zhang
    2020 use the same subsampled estimator), so it costs no extra training.

    correct: (m, n) bool, whether model j classifies example i correctly; in_mask: (m, n) bool, whether model j
    trained on example i. Examples with fewer than `min_models` IN or fewer than `min_models` OUT models are
    excluded (NaN, `included` False) and counted in `message`, as in `lira_scores`. level: with a value such as
    0.95, a per-example interval of the difference: Newcombe's (1998) hybrid score interval (his method 10: Wilson
    intervals of p_in and p_out combined), which stays inside [-1, 1] and keeps its width at 0/k and k/k, where a
    Wald interval collapses to a point (with 4 IN and 4 OUT models it is wide: the estimate is coarse).
    """
    c = np.asarray(correct)
    mask = np.asarray(in_mask)
    if c.ndim != 2 or mask.shape != c.shape:
        raise ConfigError(
            f"`correct` and `in_mask` must both be (n_models, n_examples) arrays; got {c.shape} and {mask.shape}"
        )
    if mask.dtype != bool:
        raise ConfigError(f"`in_mask` must be boolean (True where the model trained on the example), got {mask.dtype}")
    if c.dtype != bool and not np.isin(c, (0, 1)).all():
        raise ConfigError("`correct` must be boolean (or 0/1): whether each model classifies each example correctly")
    if isinstance(min_models, bool) or not isinstance(min_models, (int, np.integer)) or min_models < 1:
        raise ConfigError(f"`min_models` must be a whole number >= 1, got {min_models!r}")
    c = c.astype(np.float64)
    n_in, n_out = mask.sum(axis=0), (~mask).sum(axis=0)
    k_in, k_out = (c * mask).sum(axis=0), (c * ~mask).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_in = np.where(n_in > 0, k_in / np.maximum(n_in, 1), np.nan)
        p_out = np.where(n_out > 0, k_out / np.maximum(n_out, 1), np.nan)
    ok = (n_in >= min_models) & (n_out >= min_models)
    mem = np.where(ok, p_in - p_out, np.nan)
    n_bad = int((~ok).sum())
    message = ""
    if n_bad:
        message = (
            f"{n_bad} of {len(ok)} examples have fewer than {min_models} IN or OUT models and were excluded from the "
            "memorization estimate; train more models or lower `min_models`"
        )
    low = high = None
    if level is not None:
        from rote.core.stats import _z

        z = _z(level)
        l_in, u_in = _wilson(k_in, n_in.astype(np.float64), z)
        l_out, u_out = _wilson(k_out, n_out.astype(np.float64), z)
        low = np.where(ok, mem - np.sqrt((p_in - l_in) ** 2 + (u_out - p_out) ** 2), np.nan)
        high = np.where(ok, mem + np.sqrt((u_in - p_in) ** 2 + (p_out - l_out) ** 2), np.nan)
    return FeldmanEstimate(mem, p_in, p_out, n_in, n_out, ok, n_bad, message, low, high, level)


# ------------------------------------------------------------------------------- DP-SGD accounting (RDP)
# Renyi DP of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar & Zhang 2019, "Renyi Differential Privacy
# of the Sampled Gaussian Mechanism"): each example enters a step with probability q, the summed clipped gradients
# (sensitivity 1 in units of the clipping norm) get N(0, sigma^2) noise. Per step, RDP at order alpha is
# log(A_alpha) / (alpha - 1), A_alpha = E_{z ~ mu0}[(mu(z) / mu0(z))^alpha], mu0 = N(0, sigma^2),
# mu = (1 - q) mu0 + q N(1, sigma^2); T steps compose additively.

DEFAULT_RDP_ORDERS: tuple[float, ...] = tuple(
    [1 + x / 10 for x in range(1, 100)] + list(range(12, 64)) + [128, 256, 512]
)


def _signed_logsumexp(logs: np.ndarray, signs: np.ndarray) -> float:
    """log(sum_k signs_k exp(logs_k)) for a positive total."""
    m = float(np.max(logs))
    total = float(np.sum(signs * np.exp(logs - m)))
    if not total > 0:
        raise ConfigError(
            "the RDP series of the sampled Gaussian lost all precision at one of the `orders`; drop the fractional "
            "orders (use integers) or raise `noise_multiplier`"
        )
    return m + np.log(total)


def _log_a_int(q: float, sigma: float, alpha: int) -> float:
    """log A_alpha for an integer order: the binomial expansion (Mironov et al. 2019, Sec. 3.3),
    A_alpha = sum_k C(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 sigma^2))."""
    from scipy.special import gammaln

    k = np.arange(alpha + 1, dtype=np.float64)
    log_binom = gammaln(alpha + 1) - gammaln(k + 1) - gammaln(alpha - k + 1)
    logs = log_binom + k * np.log(q) + (alpha - k) * np.log1p(-q) + (k * k - k) / (2 * sigma**2)
    m = logs.max()
    return float(m + np.log(np.exp(logs - m).sum()))


def _log_a_frac(q: float, sigma: float, alpha: float, tol: float = 30.0, max_terms: int = 10_000_000) -> float:
    """log A_alpha for a fractional order: Mironov et al.'s two series split at z0 = sigma^2 log(1/q - 1) + 1/2,
    with generalized binomial coefficients C(alpha, k). Past k > alpha the terms alternate in sign, and z0 makes
    the exponential parts cancel, so they shrink only like k^-(alpha + 2); they are summed in blocks (vectorized)
    until the last term is `tol` nats below the largest, which bounds the error of the alternating tail."""
    from scipy.special import gammaln, log_ndtr

    z0 = sigma**2 * np.log(1 / q - 1) + 0.5
    log_q, log_1q = np.log(q), np.log1p(-q)
    logs, signs = [], []
    start, block, best = 0, 1024, -np.inf
    while start < max_terms:
        k = np.arange(start, start + block, dtype=np.float64)
        # log |C(alpha, k)| (gammaln is log|Gamma| at negative non-integers) and its sign: the product
        # alpha (alpha - 1) ... (alpha - k + 1) has k - 1 - floor(alpha) negative factors once k > alpha
        lb = gammaln(alpha + 1) - gammaln(k + 1) - gammaln(alpha - k + 1)
        sign = np.where((k > alpha) & ((k - np.floor(alpha)) % 2 == 0), -1.0, 1.0)
        j = alpha - k
        # (1/2) erfc((k - z0) / (sqrt 2 sigma)) = Phi((z0 - k) / sigma)
        t0 = lb + k * log_q + j * log_1q + (k * k - k) / (2 * sigma**2) + log_ndtr((z0 - k) / sigma)
        t1 = lb + j * log_q + k * log_1q + (j * j - j) / (2 * sigma**2) + log_ndtr((j - z0) / sigma)
        logs += [t0, t1]
        signs += [sign, sign]
        best = max(best, float(t0.max()), float(t1.max()))
        if k[-1] > alpha and max(t0[-1], t1[-1]) < best - tol:
            break
        start, block = start + block, block * 2
    return _signed_logsumexp(np.concatenate(logs), np.concatenate(signs))


def rdp_sampled_gaussian(
    q: float, noise_multiplier: float, steps: int = 1, orders: Sequence[float] = DEFAULT_RDP_ORDERS
) -> np.ndarray:
    """Renyi DP (in nats) of `steps` compositions of the Poisson-subsampled Gaussian mechanism, one value per order.

    q: sampling rate in [0, 1] (batch size / dataset size); noise_multiplier: sigma, the noise std divided by the
    clipping norm (> 0); orders: alpha > 1, integer orders by the binomial expansion, fractional ones by the
    series (both Mironov et al. 2019). q = 1 gives the plain Gaussian mechanism, alpha / (2 sigma^2) per step.
    Returns (len(orders),) float."""
    if not 0 <= q <= 1:
        raise ConfigError(f"`q` (the sampling rate) must be in [0, 1], got {q}")
    if not (noise_multiplier > 0 and np.isfinite(noise_multiplier)):
        raise ConfigError(
            f"`noise_multiplier` must be a finite number > 0 for a privacy guarantee, got {noise_multiplier}"
        )
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ConfigError(f"`steps` must be a whole number >= 0, got {steps}")
    a = np.asarray(orders, dtype=np.float64).ravel()
    if len(a) == 0 or not (a > 1).all() or not np.isfinite(a).all():
        raise ConfigError("`orders` must be finite Renyi orders > 1")
    out = np.empty(len(a))
    for i, alpha in enumerate(a):
        if q == 0:
            out[i] = 0.0
        elif q == 1:
            out[i] = alpha / (2 * noise_multiplier**2)
        elif float(alpha).is_integer():
            out[i] = _log_a_int(q, noise_multiplier, int(alpha)) / (alpha - 1)
        else:
            out[i] = _log_a_frac(q, noise_multiplier, float(alpha)) / (alpha - 1)
    return out * int(steps)


def rdp_to_epsilon(orders: Sequence[float], rdp: Any, delta: float, conversion: str = "classic") -> tuple[float, float]:
    """(epsilon, best order) of the (epsilon, delta)-DP implied by RDP curve `rdp` at `orders`, minimized over orders.

    conversion: "classic", Mironov (2017, Prop. 3), eps = rdp + log(1/delta) / (alpha - 1), the one TensorFlow
    Privacy's tutorials report; "improved", Balle et al. (2020, Thm. 21; also Canonne, Kamath & Steinke 2020),
    eps = rdp + log((alpha - 1) / alpha) - (log(delta) + log(alpha)) / (alpha - 1), never larger (Opacus's)."""
    if not 0 < delta < 1:
        raise ConfigError(f"`delta` must be in (0, 1), got {delta}")
    if conversion not in ("classic", "improved"):
        raise ConfigError(f"`conversion` must be 'classic' or 'improved', got {conversion!r}")
    a = np.asarray(orders, dtype=np.float64).ravel()
    r = np.asarray(rdp, dtype=np.float64).ravel()
    if a.shape != r.shape:
        raise ConfigError(f"`rdp` needs one value per order: {len(r)} values for {len(a)} orders")
    if conversion == "classic":
        eps = r + np.log(1 / delta) / (a - 1)
    else:
        eps = r + np.log((a - 1) / a) - (np.log(delta) + np.log(a)) / (a - 1)
    eps = np.maximum(eps, 0.0)
    best = int(np.nanargmin(eps))
    return float(eps[best]), float(a[best])


@dataclasses.dataclass(frozen=True)
class DPGuarantee:
    """(epsilon, delta) of a DP-SGD run under RDP accounting of the Poisson-subsampled Gaussian mechanism."""

    epsilon: float
    delta: float
    order: float
    sample_rate: float
    noise_multiplier: float
    steps: int
    conversion: str
    accountant: str = "rdp_poisson_subsampled_gaussian"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def dp_sgd_epsilon(
    sample_rate: float,
    noise_multiplier: float,
    steps: int,
    delta: float,
    *,
    orders: Sequence[float] = DEFAULT_RDP_ORDERS,
    conversion: str = "classic",
) -> DPGuarantee:
    """Epsilon of DP-SGD after `steps` steps with sampling rate `sample_rate` (batch size / n) and noise
    multiplier sigma, at `delta` (RDP accountant, `rdp_sampled_gaussian` + `rdp_to_epsilon`). The guarantee
    assumes Poisson sampling; with shuffled fixed-size batches it is the customary figure, not a proof."""
    rdp = rdp_sampled_gaussian(sample_rate, noise_multiplier, steps, orders)
    eps, order = rdp_to_epsilon(orders, rdp, delta, conversion)
    return DPGuarantee(eps, float(delta), order, float(sample_rate), float(noise_multiplier), int(steps), conversion)


__all__ += [
    "FeldmanEstimate",
    "feldman_memorization",
    "DEFAULT_RDP_ORDERS",
    "DPGuarantee",
    "dp_sgd_epsilon",
    "rdp_sampled_gaussian",
    "rdp_to_epsilon",
]
