"""The quality report's pictures: marginals per column, real / synthetic / difference trend heat maps, naive and
one-class alpha/beta curves; plotted values checked against the shares and associations computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rote.core.errors import ConfigError
from rote.data import TableSchema
from rote.tabular.quality import marginals, quality_report, trend_score
from rote.tabular.report import DETAIL_PLOTS, marginal_figure, quality_html, quality_plots, trend_heatmaps

SCHEMA = TableSchema(("x", "z"), ("g",))
REAL = pd.DataFrame({"x": [0.0, 1.0, 2.0, 4.0], "z": [1.0, 2.0, 2.0, 3.0], "g": ["a", "a", "b", "c"]})
SYNTH = pd.DataFrame({"x": [4.0, 4.0, 3.0, 0.5], "z": [3.0, 1.0, 2.0, 2.0], "g": ["a", "d", "d", "d"]})


def bars(ax) -> dict[str, list[float]]:
    return {c.get_label(): [p.get_height() for p in c] for c in ax.containers}


def test_marginal_figure_plots_the_shares():
    fig = marginal_figure(marginals(REAL, SYNTH, SCHEMA, bins=4, top=2))
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["x", "z", "g"]
    # x: bins [0,1) [1,2) [2,3) [3,4] -> real 1,1,1,1 of 4 rows; synthetic 0.5 | - | - | 3, 4, 4
    assert bars(axes[0]) == {"real": [25.0, 25.0, 25.0, 25.0], "synthetic": [25.0, 0.0, 0.0, 75.0]}
    # g: top 2 real categories a, b; c and d pooled as "other"
    assert bars(axes[2]) == {"real": [50.0, 25.0, 25.0], "synthetic": [25.0, 0.0, 75.0]}
    assert [t.get_text() for t in axes[2].get_xticklabels()] == ["a", "b", "other"]
    with pytest.raises(ConfigError, match="marginals"):
        marginal_figure(pd.DataFrame({"column": ["x"]}))


def test_marginal_figure_grid_for_many_columns():
    cols = [f"c{i}" for i in range(7)]
    wide = pd.DataFrame(np.arange(28, dtype=float).reshape(4, 7), columns=cols)
    fig = marginal_figure(marginals(wide, wide, TableSchema(tuple(cols), ())))
    assert len(fig.axes) == 9 and sum(ax.get_visible() for ax in fig.axes) == 7  # 3 x 3 grid, 2 hidden


def test_trend_heatmaps_show_real_synthetic_and_difference():
    pairs = trend_score(REAL, SYNTH, SCHEMA).pairs
    figs = trend_heatmaps(pairs)
    assert set(figs) == {"trend_real", "trend_synthetic", "trend_difference"}
    real = np.array(figs["trend_real"].axes[0].images[0].get_array())
    synth = np.array(figs["trend_synthetic"].axes[0].images[0].get_array())
    diff = np.array(figs["trend_difference"].axes[0].images[0].get_array())
    rho_r = np.corrcoef(REAL["x"], REAL["z"])[0, 1]
    rho_s = np.corrcoef(SYNTH["x"], SYNTH["z"])[0, 1]
    assert real[0, 1] == pytest.approx(rho_r) and real[1, 0] == pytest.approx(rho_r)
    assert synth[0, 1] == pytest.approx(rho_s)
    assert diff[0, 1] == pytest.approx(abs(rho_r - rho_s))
    assert np.isnan(real[0, 0])
    assert figs["trend_difference"].axes[0].get_title() == "|real − synthetic| association"


def test_quality_html_contains_every_figure_and_default_plots_stay_three():
    rng = np.random.default_rng(0)
    n = 60
    real = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "g": rng.choice(list("ab"), n)})
    synth = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "g": rng.choice(list("ab"), n)})
    q = quality_report(real, synth, SCHEMA, oc_epochs=10)
    plots = quality_plots(q)
    assert set(plots) == {"shape_columns", "trend_heatmap", "alpha_beta"}
    html = quality_html(q, plots=plots)  # the detail plots are drawn when not given
    for alt in (
        "Marginals of each column, real vs synthetic",
        "Pairwise association heat map, real table",
        "Pairwise association heat map, synthetic table",
        "Pairwise association difference heat map",
        "Pairwise trend heat map",
        "alpha-precision and beta-coverage curves",
    ):
        assert f'alt="{alt}"' in html, alt
    assert "one-class" in html and "authenticity, alaa" in html


def test_quality_plots_detail_adds_the_four_pictures():
    q = quality_report(REAL, SYNTH, SCHEMA, one_class=False)
    detail = quality_plots(q, detail=True)
    assert set(detail) == {"shape_columns", "trend_heatmap", "alpha_beta", *DETAIL_PLOTS}
    assert all(png[:4] == b"\x89PNG" for png in detail.values())


def test_experiment_table_shows_one_class_and_authenticity_only_where_computed():
    from rote.tabular.experiment import EXTRA_LABELS, EXTRA_QUALITY, METRICS, format_paper_table

    row = {"augmentation": "none", "n_seeds": 2, "improvement": float("nan")}
    for m in METRICS:
        row[f"{m}_mean"], row[f"{m}_std"] = 0.5, 0.1
    plain = pd.DataFrame([row])
    assert not set(EXTRA_LABELS.values()) & set(format_paper_table(plain, ["augmentation"]).columns)
    extra = {**row, **{f"{m}_mean": 0.25 for m in EXTRA_QUALITY}, **{f"{m}_std": 0.05 for m in EXTRA_QUALITY}}
    shown = format_paper_table(pd.DataFrame([extra]), ["augmentation"]).iloc[0]
    assert [shown[EXTRA_LABELS[m]] for m in EXTRA_QUALITY] == ["25.00 ± 5.00"] * 4
