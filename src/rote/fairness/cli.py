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
_UNDEF = typer.Option("raise", "--undefined", help="A group without some class: raise (default) or skip the class.")
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

    scalars = {"bounds": [r.to_dict() for r in result]} if isinstance(result, list) else result
    return run.finish(
        scalars,
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
    n_boot: int = typer.Option(0, "--n-boot", help="Bootstrap replicates for confidence intervals (0: none)."),
    level: float = typer.Option(0.95, "--level", help="Confidence level of the intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Statistical parity, equal opportunity and equalized odds (additive, multi-class), per class and overall."""
    from rote.core.runs import RunFolder
    from rote.fairness import fairness_metrics

    if n_boot < 0:
        raise ConfigError(f"--n-boot must be >= 0, got {n_boot}")
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
    undefined: str = _UNDEF,
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
    seed: int = typer.Option(0, "--seed", help="Seed of the choice among interchangeable rows."),
    force: bool = _FORCE,
    quiet: bool = _QUIET,
) -> int:
    """Minimum memorized mass that removes each metric's bias (LP / HiGHS), closed-form bounds, and a concrete set
    of rows that achieves it (rows_<metric>.parquet)."""
    import numpy as np
    import pandas as pd

    from rote.core.runs import RunFolder
    from rote.fairness import memorization_effect
    from rote.fairness.bounds import MODELS, memorized_set
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
    roles = _roles(label, prediction, groups, weight)
    lab = _labels_arg(labels, frame, label)
    kw = dict(sensitive_features=_groups(frame, groups), sample_weight=frame[weight] if weight else None, labels=lab)
    results, sets = [], {}
    for m in metrics:
        res, mask = _call(
            lambda m=m: memorized_set(
                frame[label],
                frame[prediction],
                metric=m,
                model=model,
                tol=tol,
                max_rate=max_rate,
                integral=integral,
                seed=seed,
                **kw,
            ),
            data,
            roles,
        )
        results.append(res)
        if res.feasible:
            eff = memorization_effect(frame[label], frame[prediction], memorized=mask, metrics=[m], **kw)
            sets[m] = {"n_rows": int(mask.sum()), "bias_after": eff.after[m]}
            idx = np.flatnonzero(mask)
            run.write_parquet(
                f"rows_{m}.parquet",
                pd.DataFrame(
                    {
                        "row": idx + 1,
                        "group": _groups(frame, groups).iloc[idx].astype(str).to_numpy()
                        if len(groups) == 1
                        else [", ".join(map(str, r)) for r in frame[groups].iloc[idx].to_numpy()],
                        "label": frame[label].iloc[idx].astype(str).to_numpy(),
                        "prediction": frame[prediction].iloc[idx].astype(str).to_numpy(),
                    }
                ),
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
        seed=seed,
    )
    lines = [r.summary() for r in results]
    for m, s in sets.items():
        lines.append(
            f"  {m}: concrete set of {s['n_rows']:,} rows (rows_{m}.parquet; 1-based data rows) leaves "
            f"bias {s['bias_after']:.4g}"
        )
    return _finish(
        results,
        run,
        "rote fairness bound",
        options,
        data,
        "Memorized mass that removes bias",
        "\n".join(lines),
        quiet,
        extra={"concrete_sets": sets},
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
    )
    return _finish(
        result, run, "rote fairness audit", options, data, "Fairness by memorization audit", result.summary(), quiet
    )
