"""Every report kind opened in headless Chromium: no console or page errors, no request leaving the file, every
image decoded, every table with body rows, a title and a heading.

The run folders are made by the real `rote` verbs on small data (the table `REPORT_CASES` in tests/browser.py; a
new report kind adds one row there). Chromium is Debian's `chromium` package: without it these tests fail, saying
what to install (they are part of `make test`, not skipped).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from browser import REPORT_CASES, TEST, Browser, BrowserMissing, Inputs


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the whole module."""
    try:
        b = Browser(width=1200).start()
    except BrowserMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield b
    b.close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Inputs:
    """The shared inputs (Adult subsets, a tiny GPT, a predictions table), built on first use."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors on a shared 2-core machine: one thread is faster
    yield Inputs(tmp_path_factory.mktemp("reports"), TEST)
    torch.set_num_threads(before)


@pytest.mark.parametrize("case", REPORT_CASES, ids=lambda c: c.kind)
def test_report_opens_cleanly_in_chromium(case, inputs, browser):
    folder = case.make(inputs)
    report = folder / "report.html"
    assert report.is_file(), f"`{case.command}` wrote no report.html in {folder}"
    check = browser.check(report)
    problems = check.problems()
    assert not problems, f"{case.kind} ({case.command}), {report}:\n  " + "\n  ".join(problems)
    assert check.tables, f"{case.kind}: no table at all (every report has a summary table)"
    plots = sorted(p.name for p in folder.glob("*.png"))
    assert len(check.images) >= len(plots), f"{case.kind}: {len(check.images)} images shown, plots written: {plots}"


_PNG_1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="


def test_checker_sees_broken_pages(browser, tmp_path: Path):
    """The checks catch what they claim to: a healthy page passes; a page with a broken image, an empty table,
    a script error, an external request and no title or heading fails on each."""
    good = tmp_path / "good.html"
    good.write_text(
        f"<!doctype html><title>ok</title><h1>Report</h1><img alt='dot' src='data:image/png;base64,"
        f"{_PNG_1x1}'><table><thead><tr><th>a</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>"
    )
    check = browser.check(good, screenshot=tmp_path / "good.png")
    assert check.problems() == []
    assert check.images[0]["width"] == 1 and check.tables[0]["rows"] == 1
    assert (tmp_path / "good.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    broken_png = base64.b64encode(b"\x89PNG\r\n\x1a\nnot a png").decode()
    bad = tmp_path / "bad.html"
    bad.write_text(
        f"<!doctype html><p>no heading</p><img alt='plot' src='data:image/png;base64,{broken_png}'>"
        "<table><caption>empty</caption><thead><tr><th>a</th></tr></thead><tbody></tbody></table>"
        "<script>console.error('boom'); undefinedFunction();</script>"
        "<img alt='remote' src='http://127.0.0.1:9/x.png'>"
    )
    problems = "\n".join(browser.check(bad).problems())
    for needle in (
        "no <title>",
        "no <h1> heading",
        "image 0 (plot) not decoded",
        "table 0 (empty) has no body rows",
        "console error: boom",
        "page error:",
        "undefinedFunction",
        "external request",
        "image 1 (remote) not decoded",
    ):
        assert needle in problems, (needle, problems)
