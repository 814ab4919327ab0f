"""rote.report (HTML builder, plots) and rote.tabular.report (audit report and run files)."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest

from rote.core.errors import DataError
from rote.core.runs import RunFolder
from rote.report import Report, figure_to_png, ratio_histogram
from rote.report.plots import COLOR_KEPT, COLOR_MEMORIZED, COLOR_MIXED
from rote.tabular import audit
from rote.tabular.report import audit_outputs, audit_report, copies_table

PNG = b"\x89PNG\r\n\x1a\n"


def _data_uri_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def _assert_self_contained(html: str) -> None:
    assert "http://" not in html and "https://" not in html
    for attr in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html):
        assert attr.startswith("data:image/png;base64,"), attr
    assert "<script" not in html.lower()
    assert "url(" not in html
    assert "<link" not in html.lower()


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def copied_audit():
    """30 training rows and 20 synthetic rows; synthetic 0 and 1 copy training row 4 exactly, synthetic 2 copies
    training row 9 exactly, synthetic 3 is training row 4 with income moved by 1."""
    rng = np.random.default_rng(7)
    n_tr, n_sy = 30, 20
    train = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n_tr).astype(float),
            "income": rng.uniform(20_000, 90_000, n_tr).round(2),
            "city": rng.choice(["Paris", "Lyon", "Nice"], n_tr),
            "label": rng.choice(["yes", "no"], n_tr),
        }
    )
    train.loc[4, ["age", "income", "city"]] = [41.0, 12345.67, "Marseille"]
    train.loc[9, ["age", "income", "city"]] = [77.0, 98765.43, "Brest"]
    synthetic = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n_sy).astype(float),
            "income": rng.uniform(20_000, 90_000, n_sy).round(2),
            "city": rng.choice(["Paris", "Lyon", "Nice"], n_sy),
            "label": rng.choice(["yes", "no"], n_sy),
        }
    )
    synthetic.iloc[0] = train.iloc[4]
    synthetic.iloc[1] = train.iloc[4]
    synthetic.iloc[2] = train.iloc[9]
    synthetic.iloc[3] = train.iloc[4]
    synthetic.loc[3, "income"] = 12346.67
    return audit(train, synthetic, target="label", distance="gower")


# ---------------------------------------------------------------------------------------------- Report


def test_everything_user_supplied_is_escaped():
    r = Report("<Title> & co", subtitle="<i>sub</i>")
    r.add_summary({"<k>": "<v>", "n": 3})
    r.add_heading("<h>")
    r.add_text("a < b & c > d <script>alert(1)</script>")
    frame = pd.DataFrame({"<script>": ["<b>bold</b>", "x"], 'y"q': [1.5, 2.0]})
    r.add_table(frame, caption="<cap>")
    r.add_config({"path": "<img src=x onerror=alert(1)>"})
    html = r.render()
    assert "&lt;script&gt;" in html
    assert "<script" not in html.lower()
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>" not in html
    assert "&lt;Title&gt; &amp; co" in html and "<Title>" not in html
    assert "&lt;i&gt;sub&lt;/i&gt;" in html and "&lt;k&gt;" in html and "&lt;cap&gt;" in html
    assert "y&quot;q" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    _assert_self_contained(html)


def test_summary_formats_numbers():
    r = Report("t")
    r.add_summary(
        {
            "ints": 1234567,
            "float": 0.123456789,
            "nan": float("nan"),
            "flag": True,
            "none": None,
            "np": np.int64(42),
            "text": "12.50%",
        }
    )
    html = r.render()
    for text in ("1,234,567", "0.1235", "undefined", "yes", "none", "42", "12.50%"):
        assert f"<td>{text}</td>" in html


def test_table_highlight_truncation_and_missing():
    frame = pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x", "y", None, "w"], "c": [0.5, np.nan, 1e-9, 2.0]})
    r = Report("t")
    r.add_table(frame, max_rows=3, highlight={1: {"b"}})
    html = r.render()
    assert re.findall(r'<td class="([^"]*diff[^"]*)">([^<]*)</td>', html) == [("diff", "y")]
    assert html.count("<tr>") == 1 + 3  # header + 3 shown rows
    assert "Showing the first 3 of 4 rows." in html
    assert '<td class="num">0.5</td>' in html and '<td class="missing">NA</td>' in html
    assert '<td class="num">1e-09</td>' in html
    assert ">w<" not in html  # the 4th row is left out


def test_table_exact_digits():
    r = Report("t")
    r.add_table(pd.DataFrame({"v": [0.1234567891, 39.0]}), digits=None)
    html = r.render()
    assert '<td class="num">0.1234567891</td>' in html and '<td class="num">39</td>' in html


def test_images_are_embedded_png():
    frame_fig = ratio_histogram(np.linspace(0, 1, 6), [3, 1, 0, 2, 5], threshold=0.3)
    r = Report("t")
    png = figure_to_png(ratio_histogram(np.linspace(0, 1, 3), [1, 2], threshold=0.5))
    r.add_image(png, alt="hist", caption="a caption")
    r.add_figure(frame_fig)
    html = r.render()
    images = _data_uri_pngs(html)
    assert len(images) == 2 and all(b.startswith(PNG) for b in images)
    assert images[0] == png
    assert 'alt="Distance ratio d1/d2 of synthetic rows"' in html  # add_figure's default alt: the axes title
    _assert_self_contained(html)
    with pytest.raises(DataError):
        r.add_image(b"GIF89a...", alt="not a png")


def test_heading_level_checked():
    with pytest.raises(ValueError):
        Report("t").add_heading("x", level=1)


def test_render_is_repeatable():
    r = Report("t", "s")
    r.add_text("hello")
    assert r.render() == r.render()


# ---------------------------------------------------------------------------------------------- plots


def test_ratio_histogram_bars_colours_and_labels():
    edges = np.linspace(0, 1, 21)
    counts = list(range(20))
    fig = ratio_histogram(edges, counts, threshold=1 / 3, undefined=7)
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == len(counts)
    assert [b.get_height() for b in bars] == counts
    assert np.allclose([b.get_x() for b in bars], edges[:-1])
    from matplotlib.colors import to_hex

    colours = [to_hex(b.get_facecolor()) for b in bars]
    # bins [0, 0.05) ... [0.25, 0.3) lie left of 1/3, [0.3, 0.35) contains it, the rest lie right of it
    assert colours[:6] == [COLOR_MEMORIZED] * 6
    assert colours[6] == COLOR_MIXED
    assert colours[7:] == [COLOR_KEPT] * 13
    assert ax.get_ylabel() == "synthetic rows"
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and np.allclose(dashed[0].get_xdata(), 1 / 3)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("0/0" in t and "7" in t for t in legend)
    assert any("threshold 0.333" in t for t in legend)
    png = figure_to_png(fig)
    assert png.startswith(PNG)


def test_ratio_histogram_rejects_mismatched_edges():
    with pytest.raises(DataError):
        ratio_histogram([0, 0.5, 1], [1, 2, 3], threshold=0.3)


def test_figure_to_png_is_deterministic():
    a = figure_to_png(ratio_histogram(np.linspace(0, 1, 11), [1] * 10, threshold=0.3))
    b = figure_to_png(ratio_histogram(np.linspace(0, 1, 11), [1] * 10, threshold=0.3))
    assert a == b


# ---------------------------------------------------------------------------------------------- audit report


def test_audit_report_content(copied_audit):
    r = copied_audit
    assert r.exact_copies == 3
    html = audit_report(r)
    _assert_self_contained(html)
    assert f"{r.memorization_ratio:.2%}" in html
    assert f"{r.mem_auc:.4f}" in html and f"{r.mem_auc_grid:.4f}" in html
    assert "Fang et al." in html
    # training row 4 is the most copied (3 memorized copies), then training row 9
    assert html.index("train #4") < html.index("train #9")
    assert "12345.67" in html and "Marseille" in html and "98765.43" in html and "Brest" in html
    assert "synthetic #0 (exact copy)" in html and "synthetic #2 (exact copy)" in html
    assert re.search(r"synthetic #3 \(ratio [0-9.e-]+\)", html)
    # the near copy differs from its training row in income only: that one cell is highlighted
    assert "12346.67" in re.findall(r'<td class="num diff">([^<]*)</td>', html)
    images = _data_uri_pngs(html)
    assert len(images) == 1 and images[0].startswith(PNG)


def test_copies_table_rows_and_highlight(copied_audit):
    frame, highlight = copies_table(copied_audit, 4)
    assert list(frame.columns) == ["row", "age", "income", "city", "label"]
    assert frame["row"].tolist()[0] == "train #4"
    assert len(frame) == 4  # the training row and its 3 memorized copies
    labels = frame["row"].tolist()[1:]
    assert {"synthetic #0 (exact copy)", "synthetic #1 (exact copy)"} <= set(labels)
    near = next(i for i, s in enumerate(frame["row"]) if s.startswith("synthetic #3"))
    assert highlight == {near: {"income"}}


def test_audit_report_is_deterministic(copied_audit):
    assert audit_report(copied_audit) == audit_report(copied_audit)
    cfg = {"command": "rote tabular audit", "threshold": copied_audit.threshold}
    html = audit_report(copied_audit, config=cfg)
    assert "<details>" in html and "rote tabular audit" in html
    assert html == audit_report(copied_audit, config=cfg)
    assert "created" not in audit_report(copied_audit)


def test_audit_report_top_limits_rows(copied_audit):
    html = audit_report(copied_audit, top=1)
    assert "train #4" in html and "train #9" not in html


def test_audit_report_nothing_memorized():
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"x": rng.normal(size=40), "y": rng.normal(size=40)})
    synthetic = pd.DataFrame({"x": rng.normal(size=15), "y": rng.normal(size=15)})
    r = audit(train, synthetic, distance="l2", threshold=1e-6)
    assert r.memorization_ratio == 0.0
    html = audit_report(r)
    assert "No synthetic row is memorized" in html
    assert "train #" not in html
    _assert_self_contained(html)


def test_finished_audit_run_holds_every_file(copied_audit, tmp_path, capsys):
    r = copied_audit
    run = RunFolder(tmp_path / "run")
    assert (
        run.finish(r, command="rote tabular audit", options={"distance": "gower"}, quiet=True, **audit_outputs(r)) == 0
    )
    assert capsys.readouterr() == ("", "")  # quiet: nothing printed
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["command"] == "rote tabular audit" and cfg["options"] == {"distance": "gower"}
    names = {
        "results": "results.json",
        "rows": "rows.parquet",
        "train_rows": "train_rows.parquet",
        "ratio_hist": "ratio_hist.png",
        "report": "report.html",
        "config": "config.json",
    }
    assert sorted(x.name for x in (tmp_path / "run").iterdir()) == sorted(names.values())
    paths = {key: tmp_path / "run" / name for key, name in names.items()}
    for p in paths.values():
        assert p.is_file() and p.stat().st_size > 0
    assert not list((tmp_path / "run").glob(".*.tmp"))  # no temporary files left behind

    results = json.loads(paths["results"].read_text())
    for key in ("memorization_ratio", "mem_auc", "exact_copies", "n_train", "n_synthetic", "distance", "threshold"):
        assert results[key] == getattr(r, key), key
    pd.testing.assert_frame_equal(pd.read_parquet(paths["rows"]), r.rows)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["train_rows"]), r.train_rows)
    png = paths["ratio_hist"].read_bytes()
    assert png.startswith(PNG)
    html = paths["report"].read_text(encoding="utf-8")
    assert html == audit_report(r, config=cfg)
    assert _data_uri_pngs(html) == [png]
