"""`rote fairness`: multi-class fairness metrics, memorization effects, minimum memorized mass, gaming audit.

Every command reads one table (CSV or Parquet) with a label, a prediction and a group column, calls one library
function in `rote.fairness`, and writes a run folder (config.json, results.json, Parquet tables, gaps.png,
report.html). Bad input exits with code 2 and one line naming the file, column and row.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from rote.core.errors import ConfigError, RoteError, SchemaError

app = typer.Typer(
    help="Multi-class fairness metrics, how memorization changes them, and the memorized mass that "
    "removes bias (Pepin, Igel & Selvan).",
    no_args_is_help=True,
)

_DATA = typer.Option(..., "--data", help="Table (CSV or Parquet) with label, prediction and group columns.")
_OUT = typer.Option(..., "--out", help="Run folder (config.json, results.json, *.parquet, gaps.png, report.html).")
_LABEL = typer.Option("label", "--label", help="Column of true labels.")
_PRED = typer.Option("prediction", "--prediction", help="Column of the (base) classifier's predictions.")
_GROUP = typer.Option("group", "--group", help="Group column(s); several (comma-separated) are crossed.")
_WEIGHT = typer.Option(None, "--weight", help="Column of non-negative sample weights (default: 1 per row).")
_LABELS = typer.Option(None, "--labels", help="Every class, comma-separated (default: the label column's values).")
_METHOD = typer.Option("between_groups", "--method", help="between_groups (max - min) or to_overall.")
_AGG = typer.Option("sum", "--agg", help="Aggregate of per-class gaps: sum (the paper's), max or mean.")
_UNDEF = typer.Option(
    "raise",
    "--undefined",
    help="A group without some class another group has: raise (default), skip (leave that group out of the "
    "class's gap; the results list every empty group/class cell) or zero (count its rates as 0, as fairlearn does).",
)
_UNDEF_MEM = typer.Option(
    "raise",
    "--undefined",
    help="A group without some class another group has: raise (default) or skip (compare each class over the "
    "groups that have it; the results list every empty group/class cell).",
)
_FORCE = typer.Option(False, "--force", help="Replace the results of a finished run in --out.")
_QUIET = typer.Option(False, "--quiet", help="No progress output.")

_ROLE_PREFIX = re.compile(r"^(y_true|y_pred|pred_after|sensitive_features|sample_weight|memorized|labels): ")


def _split(value: Optional[str]) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _load(path: Path, columns: dict[str, list[str]]) -> Any:
    """The table, with a clear error for every named column it lacks."""
    from rote.data import load_table

    frame = load_table(path)
    have = [str(c) for c in frame.columns]
    for option, cols in columns.items():
        for c in cols:
            if c not in frame.columns:
                raise SchemaError(f"{path}: no column '{c}' (given by {option}); columns are: {', '.join(have)}")
    return frame


def _call(fn: Callable[[], Any], path: Path, roles: dict[str, str]) -> Any:
    """Run a library call; input errors that name an argument are re-worded to name the file and column."""
    try:
        return fn()
    except RoteError as exc:
        msg = str(exc)
        m = _ROLE_PREFIX.match(msg)
        if m and m.group(1) in roles:
            raise type(exc)(f"{path}: column {roles[m.group(1)]}: {msg[m.end() :]}") from None
        raise


def _labels_arg(labels: Optional[str], frame: Any, col: str) -> Optional[list[Any]]:
    """--labels as typed, converted to the label column's numeric type when it is numeric."""
    vals = _split(labels)
    if not vals:
        return None
    import pandas as pd

    if pd.api.types.is_numeric_dtype(frame[col].dtype):
        try:
            return [int(v) if float(v).is_integer() else float(v) for v in vals]
        except ValueError:
            raise ConfigError(f"--labels: '{labels}' are not numbers but column '{col}' is numeric") from None
    return vals


def _label_value(value: Optional[str], frame: Any, col: str) -> Any:
    """A class typed on the command line, converted to the label column's numeric type when it is numeric."""
    if value is None:
        return None
    import pandas as pd

    if pd.api.types.is_numeric_dtype(frame[col].dtype):
        try:
            v = float(value)
        except ValueError:
            raise ConfigError(f"--pos-label: '{value}' is not a number but column '{col}' is numeric") from None
        return int(v) if v.is_integer() else v
    return value


def _group_value(value: Optional[str], frame: Any, cols: list[str]) -> Any:
    """A group typed on the command line: the group column's value (numeric columns converted), or the crossed
    label "a, b" for several columns."""
    if value is None or len(cols) != 1:
        return value
    import pandas as pd

    if pd.api.types.is_numeric_dtype(frame[cols[0]].dtype):
        try:
            v = float(value)
        except ValueError:
            raise ConfigError(f"--privileged: '{value}' is not a number but column '{cols[0]}' is numeric") from None
        return int(v) if v.is_integer() else v
    return value


def _groups(frame: Any, cols: list[str]) -> Any:
    return frame[cols[0]] if len(cols) == 1 else frame[cols]


def _roles(
    label: str, pred: str, group: list[str], weight: Optional[str], memorized: Optional[str] = None
) -> dict[str, str]:
    roles = {
        "y_true": f"'{label}' (--label)",
        "y_pred": f"'{pred}' (--prediction)",
        "sensitive_features": f"'{','.join(group)}' (--group)",
        "labels": "--labels",
    }
    if weight:
        roles["sample_weight"] = f"'{weight}' (--weight)"
    if memorized:
        roles["memorized"] = f"'{memorized}' (--memorized)"
    return roles


def _finish(
    result: Any,
    run: Any,
    command: str,
    options: dict[str, Any],
    data: Path,
    title: str,
    summary: str,
    quiet: bool,
    extra: dict[str, Any] | None = None,
) -> int:
    from rote.fairness.report import fairness_outputs

    return run.finish(
        result,
        command=command,
        options=options,
        inputs={"data": data},
        summary=summary,
        quiet=quiet,
        extra=extra,
        **fairness_outputs(result, title=title, subtitle=str(data)),
    )


@app.command("metrics")
def metrics_cmd(
    data: Path = _DATA,
    out: Path = _OUT,
    label: str = _LABEL,
    prediction: str = _PRED,
    group: str = _GROUP,
    weight: Optional[str] = _WEIGHT,
    labels: Optional[str] = _LABELS,
    method: str = _METHOD,
    agg: str = _AGG,
    undefined: str = _UNDEF,
    n_boot: int = typer.Option(
        0, "--n-boot", help="Bootstrap replicates for intervals on every metric and per-class gap (0: none)."
    ),
    level: float = typer.Option(0.95, "--level", help="Confidence level of the intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    pos_label: Optional[str] = typer.Option(
        None, "--pos-label", help="Also fairlearn's binary difference and ratio for this class (one-vs-rest)."
    ),
    privileged: Optional[str] = typer.Option(
        None, "--privileged", help="Group to compare every group against (signed differences and ratios)."
    ),
    small_group: int = typer.Option(30, "--small-group", help="Warn about groups with fewer rows than this."),
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Statistical parity, equal opportunity and equalized odds (additive, multi-class), per class and overall,
    with their normalised forms, ratios (80% rule), per-group base rates and per-class bootstrap intervals."""
    from rote.core.runs import RunFolder
    from rote.fairness import fairness_metrics

    if n_boot < 0:
        raise ConfigError(f"--n-boot must be >= 0, got {n_boot}")
    if small_group < 0:
        raise ConfigError(f"--small-group must be >= 0, got {small_group}")
    groups = _split(group)
    run = RunFolder(out, force=force, inputs=[data])
    frame = _load(
        data,
        {"--label": [label], "--prediction": [prediction], "--group": groups, "--weight": [weight] if weight else []},
    )
    result = _call(
        lambda: fairness_metrics(
            frame[label],
            frame[prediction],
            sensitive_features=_groups(frame, groups),
            sample_weight=frame[weight] if weight else None,
            labels=_labels_arg(labels, frame, label),
            method=method,
            agg=agg,
            undefined=undefined,
            n_boot=n_boot,
            level=level,
            seed=seed,
            pos_label=_label_value(pos_label, frame, label),
            privileged=_group_value(privileged, frame, groups),
            small_group=small_group,
        ),
        data,
        _roles(label, prediction, groups, weight),
    )
    options = dict(
        data=str(data),
        label=label,
        prediction=prediction,
        group=groups,
        weight=weight,
        labels=labels,
        method=method,
        agg=agg,
        undefined=undefined,
        n_boot=n_boot,
        level=level,
        seed=seed,
        pos_label=pos_label,
        privileged=privileged,
        small_group=small_group,
    )
    return _finish(
        result, run, "rote fairness metrics", options, data, "Multi-class fairness metrics", result.summary(), quiet
    )


@app.command("memorization")
def memorization_cmd(
    data: Path = _DATA,
    out: Path = _OUT,
    memorized: str = typer.Option(
        ..., "--memorized", help="Boolean column: rows the model memorizes (true/false, 1/0)."
    ),
    label: str = _LABEL,
    prediction: str = _PRED,
    group: str = _GROUP,
    weight: Optional[str] = _WEIGHT,
    labels: Optional[str] = _LABELS,
    method: str = _METHOD,
    agg: str = _AGG,
    undefined: str = _UNDEF_MEM,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Metrics before and after memorizing the rows of --memorized (closed form and direct, with each gap split
    into the memorized and unmemorized sets' parts)."""
    from rote.core.runs import RunFolder
    from rote.fairness import memorization_effect

    groups = _split(group)
    run = RunFolder(out, force=force, inputs=[data])
    frame = _load(
        data,
        {
            "--label": [label],
            "--prediction": [prediction],
            "--group": groups,
            "--weight": [weight] if weight else [],
            "--memorized": [memorized],
        },
    )
    result = _call(
        lambda: memorization_effect(
            frame[label],
            frame[prediction],
            sensitive_features=_groups(frame, groups),
            memorized=frame[memorized],
            sample_weight=frame[weight] if weight else None,
            labels=_labels_arg(labels, frame, label),
            method=method,
            agg=agg,
            undefined=undefined,
        ),
        data,
        _roles(label, prediction, groups, weight, memorized),
    )
    options = dict(
        data=str(data),
        label=label,
        prediction=prediction,
        group=groups,
        weight=weight,
        labels=labels,
        memorized=memorized,
        method=method,
        agg=agg,
        undefined=undefined,
    )
    return _finish(
        result,
        run,
        "rote fairness memorization",
        options,
        data,
        "Fairness before and after memorization",
        result.summary(),
        quiet,
    )


@app.command("bound")
def bound_cmd(
    data: Path = _DATA,
    out: Path = _OUT,
    label: str = _LABEL,
    prediction: str = _PRED,
    group: str = _GROUP,
    weight: Optional[str] = _WEIGHT,
    labels: Optional[str] = _LABELS,
    metric: str = typer.Option("sp,eopp,eodds", "--metric", help="Metrics to solve for (comma-separated)."),
    model: str = typer.Option(
        "rows",
        "--model",
        help="rows (choose rows of this table) or paper (group/class masses, unmemorized statistics fixed).",
    ),
    tol: float = typer.Option(0.0, "--tol", help="Largest remaining gap per class entry."),
    max_rate: float = typer.Option(1.0, "--max-rate", help="Largest memorized share of any (group, class) cell."),
    integral: bool = typer.Option(False, "--integral", help="Whole rows (integer program; unit weights)."),
    undefined: str = _UNDEF_MEM,
    seed: int = typer.Option(0, "--seed", help="Seed of the choice among interchangeable rows."),
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Minimum memorized mass that removes each metric's bias (LP / HiGHS), closed-form bounds, a concrete set of
    rows that follows the plan (rows_<metric>.parquet) and the bias that set leaves."""
    from rote.core.runs import RunFolder
    from rote.fairness import memorization_bounds
    from rote.fairness.bounds import MODELS
    from rote.fairness.metrics import METRICS, _check_choice

    metrics = _split(metric)
    for m in metrics:
        _check_choice("--metric", m, METRICS)
    _check_choice("--model", model, MODELS)
    groups = _split(group)
    run = RunFolder(out, force=force, inputs=[data])
    frame = _load(
        data,
        {"--label": [label], "--prediction": [prediction], "--group": groups, "--weight": [weight] if weight else []},
    )
    result = _call(
        lambda: memorization_bounds(
            frame[label],
            frame[prediction],
            sensitive_features=_groups(frame, groups),
            sample_weight=frame[weight] if weight else None,
            labels=_labels_arg(labels, frame, label),
            metrics=metrics,
            model=model,
            tol=tol,
            max_rate=max_rate,
            integral=integral,
            seed=seed,
            undefined=undefined,
        ),
        data,
        _roles(label, prediction, groups, weight),
    )
    options = dict(
        data=str(data),
        label=label,
        prediction=prediction,
        group=groups,
        weight=weight,
        labels=labels,
        metric=metrics,
        model=model,
        tol=tol,
        max_rate=max_rate,
        integral=integral,
        undefined=undefined,
        seed=seed,
    )
    return _finish(
        result, run, "rote fairness bound", options, data, "Memorized mass that removes bias", result.summary(), quiet
    )


@app.command("audit")
def audit_cmd(
    data: Path = _DATA,
    out: Path = _OUT,
    before: str = typer.Option(..., "--before", help="Column of model A's (base) predictions."),
    after: str = typer.Option(..., "--after", help="Column of model B's predictions."),
    memorized: str = typer.Option(..., "--memorized", help="Boolean column: rows model B memorized."),
    label: str = _LABEL,
    group: str = _GROUP,
    weight: Optional[str] = _WEIGHT,
    labels: Optional[str] = _LABELS,
    method: str = _METHOD,
    agg: str = _AGG,
    threshold: float = typer.Option(0.5, "--threshold", help="Flag when this share of a reduction is explained."),
    holdout: Optional[Path] = typer.Option(
        None, "--holdout", help="Held-out table with the same columns (no --memorized needed)."
    ),
    undefined: str = _UNDEF_MEM,
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Fairness by memorization: flag bias reductions from model A to model B that B's memorized rows explain."""
    from rote.core.runs import RunFolder
    from rote.fairness import memorization_gaming_audit

    groups = _split(group)
    run = RunFolder(out, force=force, inputs=[p for p in (data, holdout) if p is not None])
    cols = {
        "--label": [label],
        "--before": [before],
        "--after": [after],
        "--group": groups,
        "--weight": [weight] if weight else [],
        "--memorized": [memorized],
    }
    frame = _load(data, cols)
    hold = None
    if holdout is not None:
        hf = _load(holdout, {k: v for k, v in cols.items() if k != "--memorized"})
        hold = {
            "y_true": hf[label],
            "pred_before": hf[before],
            "pred_after": hf[after],
            "sensitive_features": _groups(hf, groups),
            "sample_weight": hf[weight] if weight else None,
        }
    roles = {
        **_roles(label, before, groups, weight, memorized),
        "y_pred": f"'{before}' (--before)",
        "pred_after": f"'{after}' (--after)",
    }
    result = _call(
        lambda: memorization_gaming_audit(
            frame[label],
            frame[before],
            frame[after],
            sensitive_features=_groups(frame, groups),
            memorized=frame[memorized],
            sample_weight=frame[weight] if weight else None,
            labels=_labels_arg(labels, frame, label),
            method=method,
            agg=agg,
            threshold=threshold,
            holdout=hold,
            undefined=undefined,
        ),
        data,
        roles,
    )
    options = dict(
        data=str(data),
        label=label,
        before=before,
        after=after,
        memorized=memorized,
        group=groups,
        weight=weight,
        labels=labels,
        method=method,
        agg=agg,
        threshold=threshold,
        holdout=None if holdout is None else str(holdout),
        undefined=undefined,
    )
    return _finish(
        result, run, "rote fairness audit", options, data, "Fairness by memorization audit", result.summary(), quiet
    )


@app.command("example")
def example_cmd(
    out: Path = _OUT,
    task: str = typer.Option("income", "--task", help="income (binary, >50K) or education (4 classes)."),
    group: str = typer.Option("sex", "--group", help="Adult's protected attribute: sex or race."),
    rows: Optional[int] = typer.Option(None, "--rows", help="Subsample the training split (seeded)."),
    test_rows: Optional[int] = typer.Option(None, "--test-rows", help="Subsample the test split (seeded)."),
    tol: float = typer.Option(0.002, "--tol", help="Largest remaining gap per class entry of the concrete set."),
    weight: float = typer.Option(5.0, "--weight", help="Weight of the memorized rows when retraining."),
    max_iter: int = typer.Option(200, "--max-iter", help="Boosting iterations of the classifier."),
    threads: Optional[int] = typer.Option(None, "--threads", help="OpenMP threads of the classifier (default: all)."),
    predictions_only: bool = typer.Option(
        False,
        "--predictions-only",
        help="Only train the classifier and write its test-split predictions (predictions.parquet: label, "
        "prediction, sex, race) for the other commands.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the classifier, the subsamples and the row choice."),
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """The worked example on UCI Adult (docs/fairness.md): a real classifier, the memorized mass that removes each
    metric's bias on the training split, and what memorizing that set does on held-out rows."""
    from rote.core.runs import RunFolder
    from rote.fairness.examples import run_example
    from rote.fairness.report import fairness_outputs

    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    run = RunFolder(out, force=force)
    result = run_example(
        task,
        group,
        rows=rows,
        test_rows=test_rows,
        tol=tol,
        weight=weight,
        seed=seed,
        max_iter=max_iter,
        n_threads=threads,
        predictions_only=predictions_only,
    )
    options = dict(
        task=task,
        group=group,
        rows=rows,
        test_rows=test_rows,
        tol=tol,
        weight=weight,
        max_iter=max_iter,
        threads=threads,
        predictions_only=predictions_only,
        seed=seed,
    )
    return run.finish(
        result,
        command="rote fairness example",
        options=options,
        seed=seed,
        quiet=quiet,
        **fairness_outputs(result, title=f"Worked example: Adult {task} by {group}", subtitle="UCI Adult"),
    )
