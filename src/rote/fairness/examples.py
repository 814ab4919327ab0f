"""Worked examples on the embedded UCI Adult data (docs/fairness.md): how much memorization removes bias, and what
a model that actually memorizes that set does on held-out rows.

Run:  rote fairness example --task income --group sex --out runs/ex-income-sex     (about a minute on 2 cores)
      rote fairness example --task education --predictions-only --out runs/adult-edu (predictions for the CLI:
      runs/adult-edu/predictions.parquet, the test split's label, prediction, sex and race)

For a task (binary `income`, or 4-class `education`: no HS diploma / HS-grad / some college or associate /
bachelor's or more) and a group column:
1. Train a real classifier g (scikit-learn HistGradientBoostingClassifier, native categorical splits) on the
   training split; predict the training and test splits.
2. For each metric, solve the rows-model LP for the minimum memorized mass on the training split (with its
   closed-form bounds) and the integer program for a concrete set S of whole training rows that brings every
   per-class gap to at most `tol`.
3. Memorize S in two ways and evaluate on the training split and on the held-out test split:
   - lookup: on the training split the paper's h (the labels of S, g elsewhere); on the test split g overridden
     by the stored label on any row whose model features equal a row of S (exact-match memorization; fnlwgt is
     not a feature, so such matches occur);
   - upweighted: the same classifier retrained with the rows of S weighted `weight` times (high capacity),
     which fits most of S and also moves its decision function elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import ConfigError
from rote.core.results import Result, table_field
from rote.fairness.bounds import memorized_set, minimum_memorized_mass
from rote.fairness.metrics import METRIC_NAMES, METRICS, fairness_metrics

EDUCATION_BUCKETS = {
    **{e: "no-HS-diploma" for e in ("Preschool", "1st-4th", "5th-6th", "7th-8th", "9th", "10th", "11th", "12th")},
    "HS-grad": "HS-grad",
    **{e: "some-college/assoc" for e in ("Some-college", "Assoc-voc", "Assoc-acdm")},
    **{e: "bachelors+" for e in ("Bachelors", "Masters", "Prof-school", "Doctorate")},
}
TASKS = ("income", "education")


def load_task(
    task: str, rows: int | None = None, seed: int = 0, test_rows: int | None = None
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    """(X_train, y_train, X_test, y_test) of Adult for `task`; `rows` / `test_rows` subsample the training / test
    split (seeded)."""
    from rote.data import load_dataset

    train, test = load_dataset("adult", "train"), load_dataset("adult", "test")
    rng = np.random.default_rng(seed)
    if rows is not None and rows < len(train):
        train = train.iloc[np.sort(rng.choice(len(train), rows, replace=False))]
    if test_rows is not None and test_rows < len(test):
        test = test.iloc[np.sort(rng.choice(len(test), test_rows, replace=False))]
    out = []
    for df in (train, test):
        df = df.reset_index(drop=True)
        if task == "income":
            y = df["income"].astype(str)
            X = df.drop(columns=["income", "fnlwgt"])
        elif task == "education":
            y = df["education"].map(EDUCATION_BUCKETS).astype(str)
            X = df.drop(columns=["education", "education-num", "fnlwgt"])
        else:
            raise ConfigError(f"`task` {task!r}: unknown; choose one of {', '.join(TASKS)}")
        out += [X, y]
    return out[0], out[1], out[2], out[3]


class _Classifier:
    """HistGradientBoostingClassifier on Adult's mixed columns (categoricals as pandas categories)."""

    def __init__(self, seed: int = 0, max_iter: int = 200, n_threads: int | None = None):
        self.seed, self.max_iter, self.n_threads = seed, max_iter, n_threads

    def _threads(self) -> Any:
        """OpenMP thread limit (None: sklearn's default, all cores); spinning threads crawl on a busy machine."""
        from contextlib import nullcontext

        from threadpoolctl import threadpool_limits

        return nullcontext() if self.n_threads is None else threadpool_limits(limits=self.n_threads)

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        X = X.copy()
        for c in self.categorical_:
            v = X[c].astype(str)
            # categories unseen in training become missing (HistGradientBoosting's own handling of NaN)
            X[c] = pd.Categorical(v.where(v.isin(self.categories_[c])), categories=self.categories_[c])
        return X

    def fit(self, X: pd.DataFrame, y: pd.Series, sample_weight: np.ndarray | None = None) -> "_Classifier":
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.categorical_ = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        self.categories_ = {c: sorted(X[c].astype(str).unique()) for c in self.categorical_}
        self.model_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter, categorical_features="from_dtype", early_stopping=False, random_state=self.seed
        )
        with self._threads():
            self.model_.fit(self._frame(X), y.to_numpy(), sample_weight=sample_weight)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        with self._threads():
            return np.asarray(self.model_.predict(self._frame(X))).astype(str)


def _lookup(X_mem: pd.DataFrame, y_mem: pd.Series, X: pd.DataFrame, pred: np.ndarray) -> tuple[np.ndarray, int]:
    """Predictions with an exact-match override from the memorized rows; (predictions, rows overridden)."""
    keys = pd.util.hash_pandas_object(X_mem.astype(str), index=False).to_numpy()
    table = dict(zip(keys, y_mem.astype(str).to_numpy()))
    probe = pd.util.hash_pandas_object(X.astype(str), index=False).to_numpy()
    hit = np.array([k in table for k in probe])
    out = pred.copy()
    out[hit] = [table[k] for k in probe[hit]]
    return out, int(hit.sum())


def worked_example(
    task: str = "income",
    group: str = "sex",
    *,
    rows: int | None = None,
    tol: float = 0.002,
    weight: float = 5.0,
    seed: int = 0,
    max_iter: int = 200,
    test_rows: int | None = None,
    n_threads: int | None = None,
) -> dict[str, Any]:
    """Run the worked example for one task and group column; returns {"summary": {...}, "table": DataFrame,
    "predictions": DataFrame of the base classifier's test-split predictions (label, prediction, sex, race)}.

    table: one row per metric: min_p (rows-model LP minimum memorized share of the training split), lower/upper
    (closed-form bounds as shares), n_memorized (|S|, integer program with per-class tolerance `tol`), train and
    test bias of g, of the lookup model and of the upweighted model, test accuracy of each, and fitted_S (share
    of S the upweighted model predicts correctly).
    """
    X_tr, y_tr, X_te, y_te = load_task(task, rows, seed, test_rows)
    g_tr, g_te = X_tr[group].astype(str), X_te[group].astype(str)
    base = _Classifier(seed, max_iter, n_threads).fit(X_tr, y_tr)
    p_tr, p_te = base.predict(X_tr), base.predict(X_te)
    labels = sorted(set(y_tr) | set(y_te))
    kw = dict(labels=labels, undefined="skip")
    before_tr = fairness_metrics(y_tr, p_tr, sensitive_features=g_tr, **kw)
    before_te = fairness_metrics(y_te, p_te, sensitive_features=g_te, **kw)
    records = []
    for m in METRICS:
        lp = minimum_memorized_mass(y_tr, p_tr, sensitive_features=g_tr, metric=m, labels=labels)
        res, S = memorized_set(
            y_tr, p_tr, sensitive_features=g_tr, metric=m, labels=labels, integral=True, tol=tol, seed=seed
        )
        rec: dict[str, Any] = {
            "metric": m,
            "min_p": lp.p_memorized,
            "lower": None if lp.lower_bound is None else lp.lower_bound / lp.total_weight,
            "upper": None
            if lp.upper_bound is None or not np.isfinite(lp.upper_bound)
            else lp.upper_bound / lp.total_weight,
            "feasible": lp.feasible,
            "n_memorized": int(S.sum()),
            "reachable": lp.reachable_bias if not lp.feasible else 0.0,
            "train_before": before_tr.values[m],
            "test_before": before_te.values[m],
            "test_acc_before": before_te.accuracy,
        }
        if res.feasible and S.any():
            look_tr = np.where(S, y_tr.to_numpy(), p_tr)  # h of the paper: exactly the rows of S memorized
            look_te, n_hit = _lookup(X_tr[S], y_tr[S], X_te, p_te)
            w = np.where(S, weight, 1.0)
            up = _Classifier(seed, max_iter, n_threads).fit(X_tr, y_tr, sample_weight=w)
            u_tr, u_te = up.predict(X_tr), up.predict(X_te)
            ft = lambda yy, pp, gg, m=m: fairness_metrics(yy, pp, sensitive_features=gg, metrics=[m], **kw)  # noqa: E731
            lt, le = ft(y_tr, look_tr, g_tr), ft(y_te, look_te, g_te)
            ut, ue = ft(y_tr, u_tr, g_tr), ft(y_te, u_te, g_te)
            rec.update(
                {
                    "train_lookup": lt.values[m],
                    "test_lookup": le.values[m],
                    "test_rows_overridden": n_hit,
                    "train_upweighted": ut.values[m],
                    "test_upweighted": ue.values[m],
                    "test_acc_lookup": le.accuracy,
                    "test_acc_upweighted": ue.accuracy,
                    "fitted_S": float(np.mean(u_tr[S] == y_tr.to_numpy()[S])),
                }
            )
        records.append(rec)
    summary = {
        "task": task,
        "group": group,
        "classes": labels,
        "groups": before_tr.groups,
        "n_train": len(y_tr),
        "n_test": len(y_te),
        "train_accuracy": before_tr.accuracy,
        "test_accuracy": before_te.accuracy,
        "tol": tol,
        "weight": weight,
        "seed": seed,
    }
    predictions = pd.DataFrame(
        {
            "label": y_te.to_numpy(),
            "prediction": p_te,
            "sex": X_te["sex"].astype(str).to_numpy(),
            "race": X_te["race"].astype(str).to_numpy(),
        }
    )
    return {"summary": summary, "table": pd.DataFrame(records), "predictions": predictions}


def adult_predictions(
    task: str = "income", *, seed: int = 0, max_iter: int = 200, n_threads: int | None = None
) -> tuple[pd.DataFrame, float]:
    """The base classifier's predictions on Adult's test split for the other commands: (frame with columns label,
    prediction, sex, race; its accuracy)."""
    X_tr, y_tr, X_te, y_te = load_task(task, None, seed)
    pred = _Classifier(seed, max_iter, n_threads).fit(X_tr, y_tr).predict(X_te)
    frame = pd.DataFrame(
        {
            "label": y_te.to_numpy(),
            "prediction": pred,
            "sex": X_te["sex"].astype(str).to_numpy(),
            "race": X_te["race"].astype(str).to_numpy(),
        }
    )
    return frame, float(np.mean(frame["label"].to_numpy() == frame["prediction"].to_numpy()))


@dataclass(frozen=True)
class WorkedExample(Result):
    """`rote fairness example`: the worked example of docs/fairness.md for one task and group column.

    summary_: task, group, classes, groups, split sizes, accuracies, tol, weight, seed. table (table.parquet):
    one row per metric (see `worked_example`); empty with predictions_only. predictions (predictions.parquet):
    the base classifier's test-split predictions (label, prediction, sex, race) for the other commands.
    """

    task: str
    group: str
    predictions_only: bool
    info: dict[str, Any]
    table: pd.DataFrame = table_field("table")
    predictions: pd.DataFrame = table_field("predictions")

    def summary(self) -> str:
        s = self.info
        if self.predictions_only:
            return (
                f"{self.task}: base classifier's predictions on Adult's test split, {len(self.predictions):,} rows, "
                f"accuracy {s['test_accuracy']:.4f} (predictions.parquet: label, prediction, sex, race)"
            )
        head = (
            f"{self.task} by {self.group}: {s['n_train']:,} train / {s['n_test']:,} test rows, "
            f"{len(s['classes'])} classes, groups {', '.join(map(str, s['groups']))}; accuracy train "
            f"{s['train_accuracy']:.4f}, test {s['test_accuracy']:.4f}"
        )
        return head + "\n" + markdown_table(self.table)


def run_example(
    task: str = "income",
    group: str = "sex",
    *,
    rows: int | None = None,
    test_rows: int | None = None,
    tol: float = 0.002,
    weight: float = 5.0,
    seed: int = 0,
    max_iter: int = 200,
    n_threads: int | None = None,
    predictions_only: bool = False,
) -> WorkedExample:
    """The worked example as a Result (what `rote fairness example` writes); predictions_only skips the bounds and
    retraining and only returns the base classifier's test-split predictions."""
    if task not in TASKS:
        raise ConfigError(f"`task` {task!r}: unknown; choose one of {', '.join(TASKS)}")
    if group not in ("sex", "race"):
        raise ConfigError(f"`group` {group!r}: unknown; choose sex or race (Adult's protected attributes)")
    for name, v in (("rows", rows), ("test_rows", test_rows)):
        if v is not None and v < 10:
            raise ConfigError(f"`{name}` must be >= 10, got {v}")
    if not tol >= 0:
        raise ConfigError(f"`tol` must be >= 0, got {tol}")
    if not weight > 0:
        raise ConfigError(f"`weight` must be > 0, got {weight}")
    if max_iter < 1:
        raise ConfigError(f"`max_iter` must be >= 1, got {max_iter}")
    if predictions_only:
        frame, acc = adult_predictions(task, seed=seed, max_iter=max_iter, n_threads=n_threads)
        info = {"task": task, "n_test": len(frame), "test_accuracy": acc, "seed": seed, "max_iter": max_iter}
        return WorkedExample(task, group, True, info, pd.DataFrame({"metric": []}), frame)
    out = worked_example(
        task,
        group,
        rows=rows,
        tol=tol,
        weight=weight,
        seed=seed,
        max_iter=max_iter,
        test_rows=test_rows,
        n_threads=n_threads,
    )
    return WorkedExample(task, group, False, out["summary"], out["table"], out["predictions"])


def markdown_table(table: pd.DataFrame) -> str:
    cols = [
        "metric",
        "min_p",
        "lower",
        "upper",
        "reachable",
        "n_memorized",
        "train_before",
        "train_lookup",
        "train_upweighted",
        "test_before",
        "test_lookup",
        "test_upweighted",
        "test_rows_overridden",
        "test_acc_before",
        "test_acc_lookup",
        "test_acc_upweighted",
        "fitted_S",
    ]
    cols = [c for c in cols if c in table.columns]
    counts = {"n_memorized", "test_rows_overridden"}

    def fmt(v: Any, col: str) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "-"
        if col in counts:
            return f"{int(v):,}"
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join(fmt(r[c], c) if c != "metric" else METRIC_NAMES[r[c]] for c in cols) + " |")
    return "\n".join(lines)
