"""Reports and plots for LLM memorization runs: extraction (greedy and prompted), membership inference and the
tiny-GPT canary study. Each `save_*` writes the PNG plots, report.html and the result's tables and results.json
into a run folder; report.html shows the most copied spans of generated text highlighted inside the generation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rote.core.privacy import roc_curve
from rote.report.html import Report
from matplotlib.ticker import NullLocator

from rote.report.plots import COLOR_KEPT, COLOR_MEMORIZED, figure_to_png, new_figure


class LLMReport(Report):
    """The LLM reports: a `Report` with a side-by-side per-text table (prefix, true continuation, generation, the
    copied span highlighted in both)."""

    def add_side_by_side(
        self, rows: pd.DataFrame, *, reference: str, caption: str, extra: Sequence[str] = (), max_rows: int = 200
    ) -> None:
        """One table row per generation: id and `extra` columns, the prefix, the true continuation (`reference`
        column) and the generation, each text escaped, the longest common substring marked in both."""
        from html import escape

        def marked(text: Any, start: Any, length: Any) -> str:
            t = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
            a = max(0, min(int(start), len(t)))
            b = max(a, min(a + int(length), len(t)))
            return f"{escape(t[:a])}<mark>{escape(t[a:b])}</mark>{escape(t[b:])}"

        shown = rows.head(max_rows)
        head = "".join(
            f'<th scope="col">{escape(c)}</th>'
            for c in ["id", *extra, "copied (chars)", "prefix", "true continuation", "generation"]
        )
        body = []
        for _, r in shown.iterrows():
            n = int(r["lcsubstr_chars"])
            cells = [escape(str(r["id"]))] + [escape(str(r[c])) for c in extra] + [str(n)]
            cells.append(f'<div class="span-block">{escape(str(r["prefix_text"]))}</div>')
            cells.append(f'<div class="span-block">{marked(r[reference], r["lcsubstr_reference_start"], n)}</div>')
            cells.append(
                f'<div class="span-block">{marked(r["generated_text"], r["lcsubstr_candidate_start"], n)}</div>'
            )
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        more = f" ({len(rows) - len(shown)} more rows in rows.parquet)" if len(rows) > len(shown) else ""
        self._blocks.append(
            f"<table><caption>{escape(caption + more)}</caption><thead><tr>{head}</tr></thead><tbody>"
            + "".join(body)
            + "</tbody></table>"
        )


def _pct(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"


# ---------------------------------------------------------------------------------------------- plots


def rate_by_prefix_plot(
    groups: pd.DataFrame,
    *,
    value: str = "extraction_rate",
    ylabel: str = "extraction rate",
    title: str = "Extraction rate by prefix length",
    legend_title: str = "group",
) -> Any:
    """Line plot of `value` against prefix length, one line per group (when there is a "group" column), with the
    bootstrap band of the extraction rate when present."""
    fig = new_figure(7.5, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    parts = groups.groupby("group", sort=True) if "group" in groups.columns else [("all", groups)]
    for name, g in parts:
        g = g.sort_values("prefix_tokens")
        ax.plot(g["prefix_tokens"], g[value], marker="o", label=str(name))
        if value == "extraction_rate" and "rate_low" in g and g["rate_low"].notna().all():
            ax.fill_between(g["prefix_tokens"], g["rate_low"], g["rate_high"], alpha=0.15)
    ax.set_xscale("log")
    ticks = sorted(int(k) for k in groups["prefix_tokens"].unique())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.set_xlabel("prefix length (tokens)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if value == "extraction_rate":  # a rate: never below 0 (matplotlib pads an all-zero line to -0.04)
        ax.set_ylim(0.0, max(1.0, float(np.nanmax(groups[value].to_numpy(float), initial=0.0))) * 1.02)
    if "group" in groups.columns:
        ax.legend(title=legend_title, fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def lcs_histogram(values: np.ndarray, threshold: int, title: str = "Longest copied span per generation") -> Any:
    """Histogram of longest-common-substring lengths (characters) with the substantial-copying threshold."""
    fig = new_figure(7.5, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    v = np.asarray(values, dtype=np.float64)
    ax.hist(v, bins=min(40, max(5, len(np.unique(v)))), color=COLOR_KEPT)
    ax.axvline(threshold, color=COLOR_MEMORIZED, linestyle="--", label=f"{threshold} characters")
    ax.set_xlabel("longest common substring with the true text (characters)")
    ax.set_ylabel("generations")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def roc_plot(
    rows: pd.DataFrame, attacks: Sequence[str], metrics: Mapping[str, Mapping[str, Any]], member: str = "member"
) -> Any:
    """ROC curves of every attack: log-log axes (as MIMIR and Carlini et al. recommend for low-FPR behaviour),
    clipped at 1/n (the smallest non-zero rate n texts can show, not a fixed 1e-4), beside a linear-scale panel."""
    fig = new_figure(11.0, 5.0)
    ax, lin = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    y = rows[member].to_numpy(dtype=bool)
    fmin, tmin = 1.0 / max(1, int((~y).sum())), 1.0 / max(1, int(y.sum()))
    for a in attacks:
        fpr, tpr, _ = roc_curve(rows[a].to_numpy(np.float64), y)
        label = f"{a} (AUC {metrics[a]['auc']:.3f})"
        ax.plot(np.maximum(fpr, fmin), np.maximum(tpr, tmin), label=label)
        lin.plot(fpr, tpr, label=label)
    lo = min(fmin, tmin)
    ax.plot([lo, 1], [lo, 1], color="#999", linestyle=":", label="chance")
    lin.plot([0, 1], [0, 1], color="#999", linestyle=":", label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(fmin, 1)
    ax.set_ylim(tmin, 1.02)
    ax.set_title(f"log scale, clipped at 1/n (FPR {fmin:.2g}, TPR {tmin:.2g})")
    lin.set_title("linear scale")
    for x in (ax, lin):
        x.set_xlabel("false positive rate")
        x.set_ylabel("true positive rate")
    lin.legend(fontsize=8)
    fig.suptitle("Membership inference ROC")
    return fig


def score_histogram(rows: pd.DataFrame, attack: str, member: str = "member") -> Any:
    """Overlaid histograms of one attack's scores for members and non-members."""
    fig = new_figure(7.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    v = rows[attack].to_numpy(np.float64)
    y = rows[member].to_numpy(dtype=bool)
    bins = np.histogram_bin_edges(v, bins=30)
    ax.hist(v[y], bins=bins, alpha=0.6, color=COLOR_MEMORIZED, label="members")
    ax.hist(v[~y], bins=bins, alpha=0.6, color=COLOR_KEPT, label="non-members")
    ax.set_xlabel(f"{attack} score (higher = more likely member)")
    ax.set_ylabel("texts")
    ax.set_title(f"Scores of the {attack} attack")
    ax.legend(fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------------- extraction


def _most_copied(
    report: LLMReport, rows: pd.DataFrame, top: int, *, text_col: str = "generated_text", extra: Sequence[str] = ()
) -> None:
    if top <= 0 or rows.empty:
        return
    best = rows.sort_values(["lcsubstr_chars", "id"], ascending=[False, True], kind="stable").head(top)
    report.add_heading("Most copied spans")
    report.add_text(
        f"The {len(best)} generations with the longest verbatim span of the true text; the copied span "
        "is highlighted inside each generation."
    )
    for _, r in best.iterrows():
        bits = [f"{r['id']}", f"prefix {int(r['prefix_tokens'])} tokens"] + [f"{c} {r[c]}" for c in extra if c in r]
        bits.append(f"{int(r['lcsubstr_chars'])} characters copied")
        report.add_marked_text(
            ", ".join(bits), str(r[text_col]), int(r["lcsubstr_candidate_start"]), int(r["lcsubstr_chars"])
        )


def _comparisons(report: LLMReport, comparisons: pd.DataFrame) -> None:
    if comparisons is None or comparisons.empty:
        return
    report.add_heading("Group comparison")
    c0 = comparisons.iloc[0]
    report.add_text(
        f"{c0['name_x']} against {c0['name_y']}: two-sided Mann-Whitney U test and Welch's t-test, Cliff's delta "
        "P(X > Y) - P(X < Y) with a 95% DeLong interval, and the difference of means."
    )
    keep = [
        c
        for c in (
            "template",
            "prefix_tokens",
            "metric",
            "n_x",
            "n_y",
            "mean_x",
            "mean_y",
            "mean_difference",
            "cliffs_delta",
            "cliffs_delta_low",
            "cliffs_delta_high",
            "mann_whitney_p",
            "welch_p",
        )
        if c in comparisons.columns
    ]
    report.add_table(comparisons[keep], caption="Group comparison (comparisons.parquet)", digits=4)


def _per_text(report: LLMReport, rows: pd.DataFrame, reference: str, extra: Sequence[str]) -> None:
    if rows.empty:
        return
    report.add_heading("Every text")
    order = rows.sort_values(["lcsubstr_chars", "id"], ascending=[False, True], kind="stable")
    report.add_side_by_side(
        order,
        reference=reference,
        extra=[c for c in extra if c in rows.columns],
        caption="Prefix, true continuation and generation side by side; the longest copied span is marked in both",
    )


def extraction_report(
    result: Any, *, config: Mapping[str, Any] | None = None, top: int = 10, plots: Mapping[str, bytes] | None = None
) -> str:
    """report.html of an `ExtractionResult` (greedy k-extraction, Pythia score, probabilistic extraction)."""
    plots = plots or extraction_plots(result)
    crit = result.criteria
    report = LLMReport(
        "LLM extraction",
        subtitle=f"model {result.model}: {result.n_texts - result.n_skipped:,} texts, "
        f"suffix {result.suffix_tokens} tokens",
    )
    summary: dict[str, Any] = {
        "texts measured": result.n_texts - result.n_skipped,
        "texts skipped (too short)": result.n_skipped,
    }
    for k in result.prefix_tokens:
        summary[f"extracted exactly, prefix {k}"] = _pct(result.extraction_rate[k])
        summary[f"tokens matched (Pythia score), prefix {k}"] = _pct(result.pythia_score[k])
        summary[f"mean longest copied span (chars), prefix {k}"] = f"{result.lcsubstr_chars[k]:.1f}"
    report.add_summary(summary)
    report.add_heading("What is measured")
    report.add_text(
        f"For each text, the model continues the k tokens before token {max(result.prefix_tokens)} "
        f"greedily for {result.suffix_tokens} tokens. A text is extracted (Carlini et al. 2023) when the "
        "continuation equals the true suffix token for token; the Pythia score (Biderman et al. 2023) is "
        "the share of suffix positions generated exactly. The longest common substring (characters) of "
        "continuation and suffix is the copyright study's headline metric. Probabilistic extraction "
        "(Hayes et al. 2024) gives p(suffix | prefix) from one forward pass and the chance 1 - (1 - p)^n "
        "that n sampled continuations include the suffix."
    )
    report.add_text(
        f"Substantial copying: a verbatim span of at least {crit['min_chars']} characters, or BLEU of at "
        f"least {crit['min_bleu']} (Ippolito et al. 2022).",
        note=True,
    )
    report.add_text(
        f"Before each prefix: bos {result.bos} (token ids {result.start_ids or 'none'}). Intervals: exact "
        "Clopper-Pearson for rates (so 0 of n is not [0, 0]), a bootstrap of the mean for copied-span lengths.",
        note=True,
    )
    report.add_image(
        plots["extraction_rate"],
        alt="Extraction rate by prefix length",
        caption="Share of suffixes generated exactly, with exact 95% (Clopper-Pearson) intervals.",
    )
    report.add_image(
        plots["lcs_hist"],
        alt="Histogram of the longest copied span",
        caption="Longest verbatim span of the true suffix in each generation.",
    )
    g = result.groups.copy()
    report.add_table(g, caption="By group and prefix length", digits=4)
    _comparisons(report, result.comparisons)
    risk_cols = [c for c in result.rows.columns if c.startswith("risk_n")]
    if risk_cols:
        by = (["group"] if "group" in result.rows.columns else []) + ["prefix_tokens"]
        med = result.rows.groupby(by)[["logp_suffix", *risk_cols]].median().reset_index()
        report.add_table(
            med,
            caption="Probabilistic extraction by group: median log p(suffix) and median risk over n samples "
            "(means in the table above)",
            digits=4,
        )
    extra = ["group"] if "group" in result.rows.columns else []
    _most_copied(report, result.rows, top, extra=extra)
    _per_text(report, result.rows, "suffix_text", [*extra, "prefix_tokens"])
    if config is not None:
        report.add_config(config)
    return report.render()


def extraction_plots(result: Any) -> dict[str, bytes]:
    return {
        "extraction_rate": figure_to_png(rate_by_prefix_plot(result.groups)),
        "lcs_hist": figure_to_png(
            lcs_histogram(result.rows["lcsubstr_chars"].to_numpy(), int(result.criteria["min_chars"]))
        ),
    }


def extraction_outputs(result: Any, *, top: int = 10) -> dict[str, Any]:
    """`plots` (extraction_rate, lcs_hist) and `report` for `RunFolder.finish` of an extraction run."""
    plots = extraction_plots(result)
    return {"plots": plots, "report": lambda config: extraction_report(result, config=config, top=top, plots=plots)}


def prompted_report(
    result: Any, *, config: Mapping[str, Any] | None = None, top: int = 10, plots: Mapping[str, bytes] | None = None
) -> str:
    """report.html of a `PromptedExtractionResult` (copyright-study protocol)."""
    plots = plots or prompted_plots(result)
    report = LLMReport(
        "LLM prompted extraction",
        subtitle=f"model {result.model}: {result.n_texts - result.n_skipped:,} texts, templates "
        f"{', '.join(result.templates)}, prefixes in {result.prefix_unit}",
    )
    summary: dict[str, Any] = {
        "texts measured": result.n_texts - result.n_skipped,
        "texts skipped (too short)": result.n_skipped,
    }
    for t in result.templates:
        summary[f"refusals, {t}"] = _pct(result.refusal_rate[t])
        summary[f"output filtered (content_filter or empty), {t}"] = _pct(result.filtered_rate[t])
        best_k = max(result.lcsubstr_chars[t], key=result.lcsubstr_chars[t].get)
        summary[f"longest mean copied span, {t}"] = f"{result.lcsubstr_chars[t][best_k]:.1f} chars (prefix {best_k})"
    report.add_summary(summary)
    report.add_heading("What is measured")
    report.add_text(
        "Each text's first k units are put into a prompt template asking the model to continue the text "
        "(Freeman et al.'s three attacks: plain request, the same after a harmless earlier exchange, and a "
        "role-play; our wording, see rote.llm.extraction.PROMPT_TEMPLATES). The answer is compared with "
        "the rest of the text: the longest verbatim span in characters (the study's headline metric), "
        "ROUGE-L and BLEU against the same number of words. Refusals are detected by phrase matching; answers "
        "withheld by output filtering (finish_reason content_filter, or empty) are counted apart, not as refusals. "
        f"A restatement of the prefix at the start of an answer (at least {result.strip_echo} characters; 0 = off) "
        "is left out of the comparison; copying anywhere else counts in full."
    )
    report.add_image(
        plots["lcs_by_prefix"],
        alt="Longest copied span by prefix length",
        caption="Mean longest verbatim span (characters) by prefix length and template.",
    )
    report.add_table(
        result.groups,
        caption="By template and prefix length (bootstrap interval of the mean copied span; exact intervals of "
        "the substantial, refusal and filtered rates)",
        digits=4,
    )
    _comparisons(report, result.comparisons)
    _most_copied(report, result.rows, top, extra=["template"])
    extra = (["group"] if "group" in result.rows.columns else []) + ["template", "prefix_tokens", "refused", "filtered"]
    _per_text(report, result.rows, "reference_text", extra)
    if config is not None:
        report.add_config(config)
    return report.render()


def prompted_plots(result: Any) -> dict[str, bytes]:
    g = (
        result.groups.rename(columns={"template": "group"})
        if "group" not in result.groups.columns
        else result.groups.assign(
            group=result.groups["group"].astype(str) + " / " + result.groups["template"].astype(str)
        )
    )
    return {
        "lcs_by_prefix": figure_to_png(
            rate_by_prefix_plot(
                g,
                value="lcsubstr_chars_mean",
                ylabel="mean longest copied span (characters)",
                title="Longest copied span by prefix length",
                legend_title="template",
            )
        )
    }


def prompted_outputs(result: Any, *, top: int = 10) -> dict[str, Any]:
    """`plots` (lcs_by_prefix) and `report` for `RunFolder.finish` of a prompted-extraction run."""
    plots = prompted_plots(result)
    return {"plots": plots, "report": lambda config: prompted_report(result, config=config, top=top, plots=plots)}


# ---------------------------------------------------------------------------------------------- membership


def _metrics_table(metrics: Mapping[str, Mapping[str, Any]], attacks: Sequence[str]) -> pd.DataFrame:
    """One row per attack: AUC with its DeLong interval, advantage, and TPR at each FPR, written "x at 0 FP" where the
    non-members are too few to resolve that FPR (1/n >= FPR)."""
    rows = []
    for a in attacks:
        m = metrics[a]
        iv = m.get("auc_interval") or {}
        row: dict[str, Any] = {
            "attack": a,
            "AUC": m["auc"],
            "AUC low": iv.get("low"),
            "AUC high": iv.get("high"),
            "advantage": m["advantage"],
        }
        for key, v in m.items():
            if key.startswith("tpr_at_") and key.endswith("_fpr"):
                ok = m.get(f"{key}_resolved", True)
                label = key.replace("tpr_at_", "TPR at ").replace("_fpr", " FPR")
                row[label] = f"{v:.3f}" if ok else f"{v:.3f} at 0 FP"
        rows.append(row)
    return pd.DataFrame(rows)


def membership_plots(result: Any) -> dict[str, bytes]:
    return {
        "roc": figure_to_png(roc_plot(result.rows, result.attacks, result.metrics)),
        "scores": figure_to_png(score_histogram(result.rows, result.best_attack)),
    }


def membership_report(
    result: Any, *, config: Mapping[str, Any] | None = None, plots: Mapping[str, bytes] | None = None
) -> str:
    """report.html of a `MembershipResult`."""
    plots = plots or membership_plots(result)
    report = LLMReport(
        "LLM membership inference",
        subtitle=f"model {result.model}: {result.n_members} members vs {result.n_nonmembers} "
        "non-members" + (f", reference {result.reference_model}" if result.reference_model else ""),
    )
    best = result.metrics[result.best_attack]
    iv = best.get("auc_interval") or {}
    ci = f" [{iv['low']:.3f}, {iv['high']:.3f}]" if iv.get("low") is not None else ""
    report.add_summary(
        {
            "members": result.n_members,
            "non-members": result.n_nonmembers,
            "best attack": result.best_attack,
            "best AUC (95% interval)": f"{best['auc']:.3f}{ci}",
        }
    )
    report.add_heading("What is measured")
    report.add_text(
        "Each text is scored from the model's token log-probabilities; higher scores mean the text is "
        "more likely a training member. loss: mean log-likelihood; zlib: the same over the zlib-"
        f"compressed length; min_k: mean of the lowest {result.k:.0%} token log-probs; min_k_plus_plus: "
        "the same after standardizing each token by the model's next-token distribution; reference: "
        "target minus reference-model log-likelihood; recall: ReCaLL, log-likelihood after a non-member prefix "
        "over log-likelihood alone; neighbourhood: log-likelihood minus that of perturbed copies. AUC 0.5 is "
        "chance; AUC intervals are DeLong's (wide, not [1, 1], at perfect separation)."
    )
    report.add_text(
        f"Before each text: bos {result.bos} (token ids {result.start_ids or 'none'}). TPR at an FPR counts "
        f"thresholds with FPR strictly below it (MIMIR, LiRA). With {result.n_nonmembers} non-members the smallest "
        f"non-zero FPR is 1/{result.n_nonmembers} = {1 / result.n_nonmembers:.3g}: a TPR at a lower FPR is the TPR "
        "at zero false positives, marked 'at 0 FP'.",
        note=True,
    )
    report.add_table(_metrics_table(result.metrics, result.attacks), caption="Attacks", digits=4)
    for a, why in result.unavailable.items():
        report.add_text(f"{a}: not run ({why}).", note=True)
    o = result.overlap
    report.add_heading("Distribution-shift check")
    report.add_text(
        f"A score that never looks at the model (the share of a text's word {o['blind_n']}-grams found in the other "
        f"member texts minus the share found in the other non-member texts) separates the two sets with AUC "
        f"{o['blind_auc']:.3f} [{o['blind_auc_low']:.3f}, {o['blind_auc_high']:.3f}]. Near 0.5 the sets look alike "
        "at this level; well above it, the attacks' AUCs measure how the sets differ as well as membership. "
        f"{o['n']}-gram overlap: {_pct(o['nonmember_in_members'])} of the non-members' {o['n']}-grams occur in the "
        f"members, {_pct(o['member_in_nonmembers'])} the other way."
    )
    report.add_image(plots["roc"], alt="Membership inference ROC curves")
    report.add_image(plots["scores"], alt="Score histograms of the best attack")
    if config is not None:
        report.add_config(config)
    return report.render()


def membership_outputs(result: Any) -> dict[str, Any]:
    """`plots` (roc, scores) and `report` for `RunFolder.finish` of a membership-inference run."""
    plots = membership_plots(result)
    return {"plots": plots, "report": lambda config: membership_report(result, config=config, plots=plots)}


# ---------------------------------------------------------------------------------------------- canary study


def canary_report(
    study: Any,
    *,
    train: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    plots: Mapping[str, bytes] | None = None,
    top: int = 10,
) -> str:
    """report.html of `rote llm train-tiny` (a `CanaryStudyResult`): extraction of planted canaries by repeat count
    and prefix length, and membership AUC of the canaries of each repeat count against unseen canaries."""
    plots = plots or canary_plots(study)
    report = LLMReport(
        "Tiny GPT with planted canaries",
        subtitle=f"{int(train.get('n_params', 0)):,} parameters, {int(train.get('steps', 0)):,} steps, "
        f"final training loss {float(train.get('final_loss', float('nan'))):.3f} nats/byte",
    )
    summary: dict[str, Any] = {}
    kmax = max(study.prefix_tokens)
    for r, per_k in sorted(study.extraction_rate.items()):
        summary[f"canaries x{r} extracted (prefix {kmax})"] = _pct(per_k[kmax])
    for r, aucs in sorted(study.membership_auc.items()):
        summary[f"membership AUC x{r} vs unseen (loss)"] = f"{aucs['loss']:.3f}"
    report.add_summary(summary)
    report.add_heading("What is measured")
    report.add_text(
        "Canaries (sentences with random digits and words) were planted in the training corpus a given "
        "number of times each (group = number of copies; 0 = never seen, a non-member of the same form). "
        f"Extraction: greedy continuation of the k bytes before byte {kmax} of a canary reproduces the "
        f"next {study.suffix_tokens} bytes exactly. Membership: AUC of the canaries of each repeat count "
        "against the unseen ones, per attack."
    )
    report.add_image(
        plots["extraction_rate"],
        alt="Canary extraction rate by prefix length",
        caption="Share of canary suffixes extracted exactly, by number of copies (95% bootstrap bands).",
    )
    report.add_table(study.extraction_groups, caption="Extraction by repeat count and prefix length", digits=4)
    report.add_table(
        study.membership_by_repeats, caption="Membership AUC by repeat count (vs unseen canaries)", digits=4
    )
    _most_copied(report, study.extraction, top, extra=["group"])
    if config is not None:
        report.add_config(config)
    return report.render()


def canary_plots(study: Any) -> dict[str, bytes]:
    return {
        "extraction_rate": figure_to_png(
            rate_by_prefix_plot(
                study.extraction_groups,
                title="Canary extraction by number of copies and prefix length",
                legend_title="copies in training",
            )
        )
    }


def canary_outputs(study: Any, *, train: Mapping[str, Any], top: int = 10) -> dict[str, Any]:
    """`plots` (extraction_rate), `report` and `extra` (the training record) for `RunFolder.finish` of
    `rote llm train-tiny`."""
    plots = canary_plots(study)
    return {
        "plots": plots,
        "extra": {"train": dict(train)},
        "report": lambda config: canary_report(study, train=train, config=config, plots=plots, top=top),
    }
