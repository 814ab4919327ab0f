"""Open rote's report.html files in a real browser, and the table of report kinds to open.

Two halves, used by `tests/report/test_browser.py` (every report kind opened in headless Chromium) and by
`scripts/screenshots.py` (`make screenshots`: one PNG per report kind for the docs):

1. `Browser`: headless Chromium (Debian's `chromium` package, driven through playwright with `executable_path`,
   so nothing is downloaded) that opens a report over file:// and returns a `PageCheck`: console errors, page
   errors, failed or external requests, every image's decoded size, every table's body rows, the title and the
   first heading; optionally a full-page screenshot.

       with Browser() as browser:
           check = browser.check(run_folder / "report.html", screenshot="report.png")
           assert not check.problems(), check.problems()

2. `REPORT_CASES`: one `ReportCase` per report kind, each with a function that makes a run folder by running the
   real `rote` CLI verb in-process on small data (`Inputs` builds and caches the shared inputs: Adult subsets, a
   synthetic table, a tiny GPT, a predictions table). A new domain adds one row here; the browser test and the
   screenshots pick it up.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# ------------------------------------------------------------------------------------------------- the browser

CHROMIUM_PACKAGE = "chromium"  # Debian's package; `make setup` installs it when run as root
CHROMIUM_ENV = "ROTE_CHROMIUM"  # a Chromium/Chrome binary elsewhere


class BrowserMissing(RuntimeError):
    """No Chromium binary, or no playwright: the message says what to install."""


def chromium_path() -> str:
    """The Chromium binary: $ROTE_CHROMIUM, else `chromium` on PATH, else /usr/bin/chromium."""
    candidates = [os.environ.get(CHROMIUM_ENV), shutil.which("chromium"), "/usr/bin/chromium"]
    for path in candidates:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    raise BrowserMissing(
        f"no Chromium found (looked at ${CHROMIUM_ENV}, `chromium` on PATH and /usr/bin/chromium): install Debian's "
        f"`{CHROMIUM_PACKAGE}` package (`apt-get install -y {CHROMIUM_PACKAGE}`, which `make setup` does when run as "
        f"root) or set ${CHROMIUM_ENV} to a Chromium binary"
    )


@dataclass
class PageCheck:
    """What a browser saw when it opened one report."""

    url: str
    title: str = ""
    heading: str = ""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)  # alt, width (naturalWidth), height, error (decode failure)
    tables: list[dict] = field(default_factory=list)  # caption, rows (body rows), columns (cells of the first row)
    screenshot: Path | None = None

    def problems(self) -> list[str]:
        """Every defect, one line each; empty when the page is fine."""
        out = [f"console error: {m}" for m in self.console_errors]
        out += [f"page error: {m}" for m in self.page_errors]
        out += [f"failed request: {m}" for m in self.failed_requests]
        out += [f"external request (reports are self-contained): {m}" for m in self.external_requests]
        if not self.title.strip():
            out.append("no <title>")
        if not self.heading.strip():
            out.append("no <h1> heading")
        for i, img in enumerate(self.images):
            if img["error"] or not img["width"] or not img["height"]:
                out.append(f"image {i} ({img['alt'] or 'no alt'}) not decoded: {img['error'] or 'size 0'}")
        for i, table in enumerate(self.tables):
            if table["rows"] < 1:
                out.append(f"table {i} ({table['caption'] or 'no caption'}) has no body rows")
        return out


# Runs in the page: waits for every image to decode (a broken data URI rejects) and describes images and tables.
_INSPECT = """
async () => {
  const images = await Promise.all([...document.images].map(async (img) => {
    let error = null;
    try { await img.decode(); } catch (e) { error = String(e && e.message || e); }
    return {alt: img.alt || '', width: img.naturalWidth, height: img.naturalHeight, error};
  }));
  const tables = [...document.querySelectorAll('table')].map((t) => {
    const body = [...t.tBodies].flatMap((b) => [...b.rows]);
    return {caption: t.caption ? t.caption.textContent.trim() : '', rows: body.length,
            columns: body.length ? body[0].cells.length : 0};
  });
  const h1 = document.querySelector('h1');
  return {title: document.title, heading: h1 ? h1.textContent.trim() : '', images, tables};
}
"""


class Browser:
    """Headless Chromium driven by playwright; start once, open many reports. A context manager."""

    def __init__(self, executable: str | None = None, width: int = 1200, height: int = 900):
        self.executable, self.width, self.height = executable, width, height
        self._pw = self._browser = None

    def start(self) -> "Browser":
        if self._browser is not None:
            return self
        executable = self.executable or chromium_path()
        if not Path(executable).is_file():
            raise BrowserMissing(
                f"no Chromium at {executable}: install Debian's `{CHROMIUM_PACKAGE}` package "
                f"(`apt-get install -y {CHROMIUM_PACKAGE}`) or pass another binary"
            )
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:  # pragma: no cover - the test extra installs it
            raise BrowserMissing(
                "the Python package `playwright` is missing: pip install -e '.[test]' "
                "(only its driver is used; no browser is downloaded)"
            ) from exc
        self._pw = sync_playwright().start()
        try:
            # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
            self._browser = self._pw.chromium.launch(
                executable_path=executable,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
        except Exception:
            self._pw.stop()
            self._pw = None
            raise
        return self

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._pw is not None:
            self._pw.stop()
            self._pw = None

    def __enter__(self) -> "Browser":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def check(self, html: str | Path, screenshot: str | Path | None = None, timeout_ms: int = 20_000) -> PageCheck:
        """Open `html` (a file path or URL) in a fresh page, inspect it, optionally save a full-page PNG."""
        if self._browser is None:
            self.start()
        url = Path(html).resolve().as_uri() if not str(html).startswith(("file:", "http:", "https:")) else str(html)
        result = PageCheck(url=url)
        page = self._browser.new_page(viewport={"width": self.width, "height": self.height})
        try:
            page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: result.page_errors.append(str(e)))
            page.on("requestfailed", lambda r: result.failed_requests.append(f"{r.url[:120]} ({r.failure})"))

            def _request(r) -> None:
                if not r.url.startswith(("file:", "data:", "about:")):
                    result.external_requests.append(r.url[:200])

            page.on("request", _request)
            page.goto(url, wait_until="load", timeout=timeout_ms)
            seen = page.evaluate(_INSPECT)
            result.title, result.heading = seen["title"], seen["heading"]
            result.images, result.tables = seen["images"], seen["tables"]
            if screenshot is not None:
                result.screenshot = Path(screenshot)
                result.screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(result.screenshot), full_page=True)
        finally:
            page.close()
        return result


# ------------------------------------------------------------------------------------------------ report cases


def cli(argv: list[str]) -> str:
    """Run the `rote` CLI in-process (as `rote ARGV...`); returns its stdout, raises with its stderr on failure."""
    from rote.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if code:
        raise RuntimeError(f"`rote {' '.join(map(str, argv))}` exited {code}: {err.getvalue().strip()[-2000:]}")
    return out.getvalue()


@dataclass(frozen=True)
class Scale:
    """How big the inputs and runs are: `TEST` for the browser test (seconds), `DOCS` for the screenshots."""

    rows: int  # Adult training rows
    test_rows: int  # Adult test rows
    epochs: int  # TabDDPM epochs (train)
    every: int  # epochs between memorization checks (train)
    timesteps: int  # diffusion steps
    n_boot: int  # bootstrap replicates
    fair_rows: int  # rows of the predictions table (fairness)
    gpt_corpus: str  # "verses" (60 made-up lines, written here) or "kjv" (Debian's bible-kjv, when installed)
    gpt: tuple[str, ...]  # options of `rote llm train-tiny`: canaries, size, steps
    grid: str  # the experiment's grid file (YAML)
    workers: int  # the experiment's worker processes


TEST = Scale(
    rows=200,
    test_rows=150,
    epochs=2,
    every=1,
    timesteps=50,
    n_boot=20,
    fair_rows=400,
    gpt_corpus="verses",
    gpt=(
        "--canaries",
        "1,5",
        "--per-count",
        "3",
        "--steps",
        "30",
        "--batch-size",
        "8",
        "--layers",
        "1",
        "--d-model",
        "32",
        "--heads",
        "2",
    ),
    grid="axes:\n  augmentation: [none, tabcutmix]\n  train_fraction: [0.5, 1.0]\n"
    "fixed:\n  generator: ijf\n  seed: 0\n  ood: false\n",
    workers=1,
)
DOCS = Scale(
    rows=1000,
    test_rows=500,
    epochs=100,
    every=10,
    timesteps=100,
    n_boot=200,
    fair_rows=2000,
    gpt_corpus="kjv",
    gpt=(
        "--max-texts",
        "500",
        "--canaries",
        "1,10,50",
        "--per-count",
        "4",
        "--steps",
        "600",
        "--batch-size",
        "16",
        "--layers",
        "2",
        "--d-model",
        "64",
        "--heads",
        "4",
    ),
    grid="axes:\n  augmentation: [none, tabcutmix, tabcutmixplus]\n  seed: [0, 1]\n"
    "fixed:\n  generator: tabddpm\n  epochs: 100\n  every: 10\n  hook_samples: 300\n"
    "  generator_options: {num_timesteps: 100}\n",
    workers=2,
)


class Inputs:
    """The inputs the report cases share, built on first use under `root` and cached."""

    def __init__(self, root: Path, scale: Scale = TEST):
        self.root, self.scale = Path(root), scale
        self.root.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, object] = {}

    def _once(self, key: str, build: Callable[[], object]):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def out(self, kind: str) -> Path:
        """A fresh run folder for `kind` (rote refuses to overwrite a finished run without --force)."""
        path = self.root / "runs" / kind
        if path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def adult(self) -> dict[str, Path]:
        """Adult train/test subsets as CSV ("train", "test"), and "synthetic": real test rows standing in for a
        generator's output, with 5% exact copies and 5% near copies of training rows planted in it."""

        def build() -> dict[str, Path]:
            import numpy as np

            from rote.data import load_dataset

            s = self.scale
            train = load_dataset("adult", "train").sample(s.rows, random_state=1).reset_index(drop=True)
            test = load_dataset("adult", "test").sample(s.test_rows, random_state=1).reset_index(drop=True)
            synth = load_dataset("adult", "test").sample(s.rows, random_state=2).reset_index(drop=True)
            rng = np.random.default_rng(0)
            k = max(3, s.rows // 20)
            where = rng.choice(s.rows, 2 * k, replace=False)
            source = rng.choice(s.rows, 2 * k, replace=False)
            synth.iloc[where] = train.iloc[source].to_numpy()
            near = where[k:]
            synth.loc[near, "age"] = synth.loc[near, "age"] + 1  # near copies: one value moved a little
            paths = {name: self.root / f"adult_{name}.csv" for name in ("train", "test", "synthetic")}
            train.to_csv(paths["train"], index=False)
            test.to_csv(paths["test"], index=False)
            synth.to_csv(paths["synthetic"], index=False)
            return paths

        return self._once("adult", build)

    def tiny_gpt(self) -> Path:
        """A `rote llm train-tiny` run: a small byte-level GPT trained on a small text with planted canaries."""
        return self._once("tiny_gpt", lambda: _train_tiny_gpt(self))

    def canaries(self) -> dict[str, Path]:
        """The tiny GPT's canaries ("all"), split into members (trained on) and nonmembers, as JSONL files."""

        def build() -> dict[str, Path]:
            import pandas as pd

            data = self.tiny_gpt() / "canaries.jsonl"
            frame = pd.read_json(data, lines=True)
            paths = {"all": data, "members": self.root / "members.jsonl", "nonmembers": self.root / "nonmembers.jsonl"}
            frame[frame["member"]][["id", "text"]].to_json(paths["members"], orient="records", lines=True)
            frame[~frame["member"]][["id", "text"]].to_json(paths["nonmembers"], orient="records", lines=True)
            return paths

        return self._once("canaries", build)

    def predictions(self) -> Path:
        """A 3-class predictions table for `rote fairness`: a classifier less accurate on group f (biased towards
        'cat' there), rows a second model memorized, that model's predictions and sample weights."""

        def build() -> Path:
            import numpy as np
            import pandas as pd

            rng = np.random.default_rng(0)
            n = self.scale.fair_rows
            y = rng.choice(["cat", "dog", "eel"], n)
            g = rng.choice(["f", "m"], n)
            wrong = np.where(g == "f", "cat", rng.choice(["cat", "dog", "eel"], n))
            pred = np.where(rng.random(n) < np.where(g == "f", 0.6, 0.85), y, wrong)
            mem = rng.random(n) < 0.15
            frame = pd.DataFrame(
                {
                    "label": y,
                    "prediction": pred,
                    "sex": g,
                    "mem": mem,
                    "after": np.where(mem, y, pred),
                    "w": rng.uniform(0.5, 2.0, n),
                }
            )
            path = self.root / "predictions.csv"
            frame.to_csv(path, index=False)
            return path

        return self._once("predictions", build)


# One function per report kind: run the verb, return the run folder (which holds report.html).


def make_tabular_audit(inp: Inputs) -> Path:
    d, out = inp.adult(), inp.out("tabular_audit")
    cli(
        [
            "tabular",
            "audit",
            "--train",
            d["train"],
            "--synthetic",
            d["synthetic"],
            "--holdout",
            d["test"],
            "--target",
            "income",
            "--out",
            out,
            "--quiet",
        ]
    )
    return out


def make_tabular_augment(inp: Inputs) -> Path:
    d, out = inp.adult(), inp.out("tabular_augment")
    cli(
        [
            "tabular",
            "augment",
            "--train",
            d["train"],
            "--target",
            "income",
            "--method",
            "tabcutmixplus",
            "--seed",
            3,
            "--out",
            out,
        ]
    )
    return out


def make_tabular_train(inp: Inputs) -> Path:
    d, s, out = inp.adult(), inp.scale, inp.out("tabular_train")
    cli(
        [
            "tabular",
            "train",
            "--train",
            d["train"],
            "--target",
            "income",
            "--epochs",
            s.epochs,
            "--timesteps",
            s.timesteps,
            "--every",
            s.every,
            "--hook-samples",
            min(s.rows, 300),
            "--augmentation",
            "tabcutmix",
            "--out",
            out,
            "--quiet",
        ]
    )
    return out


def make_tabular_quality(inp: Inputs) -> Path:
    d, out = inp.adult(), inp.out("tabular_quality")
    cli(
        [
            "tabular",
            "quality",
            "--train",
            d["train"],
            "--synthetic",
            d["synthetic"],
            "--test",
            d["test"],
            "--target",
            "income",
            "--out",
            out,
        ]
    )
    return out


def make_tabular_experiment(inp: Inputs) -> Path:
    s, out = inp.scale, inp.out("tabular_experiment")
    grid = inp.root / "grid.yaml"
    grid.write_text(s.grid)
    cli(
        [
            "tabular",
            "experiment",
            "--grid",
            grid,
            "--rows",
            min(s.rows, 500),
            "--test-rows",
            min(s.test_rows, 500),
            "--workers",
            s.workers,
            "--out",
            out,
            "--quiet",
        ]
    )
    return out


def make_demo(inp: Inputs) -> Path:
    s, out = inp.scale, inp.out("demo")
    cli(
        [
            "demo",
            "--out",
            out,
            "--rows",
            s.rows,
            "--epochs",
            s.epochs,
            "--every",
            s.every,
            "--hook-samples",
            min(s.rows, 300),
            "--timesteps",
            s.timesteps,
            "--copies",
            10,
            "--near-copies",
            10,
            "--quiet",
        ]
    )
    return out


def _train_tiny_gpt(inp: Inputs) -> Path:
    s, out = inp.scale, inp.out("llm_train_tiny")
    corpus = "kjv"
    if s.gpt_corpus != "kjv" or shutil.which("bible") is None:  # bible-kjv is installed only when set up as root
        corpus = inp.root / "corpus.txt"
        corpus.write_text(
            "\n\n".join(
                f"Verse {i}: and the light was good, and the evening and the morning were day {i}." for i in range(60)
            ),
            encoding="utf-8",
        )
    cli(
        [
            "llm",
            "train-tiny",
            "--corpus",
            corpus,
            "--out",
            out,
            *s.gpt,
            "--block-size",
            128,
            "--prefix-tokens",
            "10,30",
            "--suffix-tokens",
            20,
            "--n-boot",
            s.n_boot,
            "--quiet",
        ]
    )
    return out


def make_llm_train_tiny(inp: Inputs) -> Path:
    return inp.tiny_gpt()  # built once: the other llm reports read its model and canaries


def make_llm_extract(inp: Inputs) -> Path:
    model, data, out = inp.tiny_gpt(), inp.canaries()["all"], inp.out("llm_extract")
    cli(
        [
            "llm",
            "extract",
            "--model",
            f"tiny:{model}",
            "--data",
            data,
            "--out",
            out,
            "--prefix-tokens",
            "10,40",
            "--suffix-tokens",
            25,
            "--group",
            "repeats",
            "--n-boot",
            inp.scale.n_boot,
            "--quiet",
        ]
    )
    return out


def make_llm_extract_prompted(inp: Inputs) -> Path:
    model, data, out = inp.tiny_gpt(), inp.canaries()["all"], inp.out("llm_extract_prompted")
    cli(
        [
            "llm",
            "extract",
            "--model",
            f"tiny:{model}",
            "--data",
            data,
            "--out",
            out,
            "--prompted",
            "--templates",
            "none",
            "--prefix-tokens",
            "25,50",
            "--max-new-tokens",
            20,
            "--quiet",
        ]
    )
    return out


def make_llm_membership(inp: Inputs) -> Path:
    model, c, out = inp.tiny_gpt(), inp.canaries(), inp.out("llm_membership")
    cli(
        [
            "llm",
            "membership",
            "--model",
            f"tiny:{model}",
            "--members",
            c["members"],
            "--nonmembers",
            c["nonmembers"],
            "--out",
            out,
            "--n-boot",
            inp.scale.n_boot,
            "--recall-shots",
            1,
            "--neighbours",
            2,
            "--quiet",
        ]
    )
    return out


def make_fairness_metrics(inp: Inputs) -> Path:
    out = inp.out("fairness_metrics")
    cli(
        [
            "fairness",
            "metrics",
            "--data",
            inp.predictions(),
            "--group",
            "sex",
            "--weight",
            "w",
            "--n-boot",
            inp.scale.n_boot,
            "--out",
            out,
            "--quiet",
        ]
    )
    return out


def make_fairness_memorization(inp: Inputs) -> Path:
    out = inp.out("fairness_memorization")
    cli(
        [
            "fairness",
            "memorization",
            "--data",
            inp.predictions(),
            "--group",
            "sex",
            "--memorized",
            "mem",
            "--out",
            out,
            "--quiet",
        ]
    )
    return out


def make_fairness_bound(inp: Inputs) -> Path:
    out = inp.out("fairness_bound")
    cli(
        [
            "fairness",
            "bound",
            "--data",
            inp.predictions(),
            "--group",
            "sex",
            "--integral",
            "--tol",
            "0.01",
            "--out",
            out,
            "--quiet",
        ]
    )
    return out


def make_fairness_audit(inp: Inputs) -> Path:
    out = inp.out("fairness_audit")
    cli(
        [
            "fairness",
            "audit",
            "--data",
            inp.predictions(),
            "--group",
            "sex",
            "--before",
            "prediction",
            "--after",
            "after",
            "--memorized",
            "mem",
            "--out",
            out,
            "--quiet",
        ]
    )
    return out


def make_fairness_example(inp: Inputs) -> Path:
    out = inp.out("fairness_example")
    cli(
        ["fairness", "example", "--task", "income", "--group", "sex", "--rows", inp.scale.rows * 5, "--test-rows"]
        + [inp.scale.test_rows * 5, "--max-iter", 5, "--threads", 1, "--tol", 0.01, "--out", out, "--quiet"]
    )
    return out


def make_sharpness_toy(inp: Inputs) -> Path:
    out = inp.out("sharpness_toy")
    cli(["sharpness", "toy", "--epochs", 2, "--generations", 60, "--steps", 8, "--out", out, "--quiet"])
    return out


def make_sharpness_fashion(inp: Inputs) -> Path:
    out = inp.out("sharpness_fashion")
    args = ["sharpness", "mnist", "--dataset", "fashion-mnist", "--epochs", 1, "--generations-per-class", 4]
    cli([*args, "--steps", 4, "--duplicates", 3, "--out", out, "--quiet"])
    return out


def _probe_demo(inp: Inputs) -> Path:
    """A small `rote llm probe-demo` run (a tiny GPT that memorizes its planted canaries, probes, a suppression
    curve), built once: its model and probes feed the probe and suppress cases."""

    def build() -> Path:
        out = inp.out("llm_probe_demo")
        args = ["llm", "probe-demo", "--out", out, "--steps", 150, "--per-count", 4, "--max-texts", 50]
        cli(args + ["--min-run", 4, "--alphas", "0,1", "--layers", 1, "--quiet"])
        return out

    return inp._once("probe_demo", build)


def make_llm_probe_demo(inp: Inputs) -> Path:
    return _probe_demo(inp)


def make_llm_probe_grid(inp: Inputs) -> Path:
    out = inp.out("llm_probe_grid")
    args = ["llm", "probe-grid", "--seeds", "0", "--steps", 80, "--per-count", 4, "--max-texts", 40, "--layers", 1]
    cli([*args, "--min-run", 4, "--alphas", "0,1", "--out", out, "--quiet"])
    return out


def make_llm_probe(inp: Inputs) -> Path:
    demo, out = _probe_demo(inp), inp.out("llm_probe")
    cli(["llm", "probe", "--model", f"tiny:{demo / 'model'}", "--out", out, "--min-run", 4, "--folds", 2, "--quiet"])
    return out


def make_llm_suppress(inp: Inputs) -> Path:
    demo, out = _probe_demo(inp), inp.out("llm_suppress")
    args = ["llm", "suppress", "--model", f"tiny:{demo / 'model'}", "--probe", demo, "--out", out]
    cli(args + ["--alphas", "0,1", "--prefix", 8, "--suffix", 8, "--quiet"])
    return out


def make_llm_detect_dataset(inp: Inputs) -> Path:
    model, c, out = inp.tiny_gpt(), inp.canaries(), inp.out("llm_detect_dataset")
    args = ["llm", "detect-dataset", "--model", f"tiny:{model}", "--suspect", c["members"]]
    cli(args + ["--reference", c["nonmembers"], "--out", out, "--prefix-tokens", 40, "--suffix-tokens", 24, "--quiet"])
    return out


def make_llm_memhunter_demo(inp: Inputs) -> Path:
    out = inp.out("llm_memhunter_demo")
    args = ["llm", "memhunter-demo", "--out", out, "--texts", 6, "--repeats", 2, "--base-texts", 20, "--steps", 10]
    cli(
        args
        + [
            "--d-model",
            16,
            "--layers",
            1,
            "--sizes",
            "3,6",
            "--repetitions",
            5,
            "--budget",
            2,
            "--rounds",
            1,
            "--quiet",
        ]
    )
    return out


def make_ssl_finetune(inp: Inputs) -> Path:
    tiny = ["--data", "digits", "--width", 2, "--epochs", 1, "--n-candidate", 40, "--n-independent", 40]
    tiny += ["--n-shared", 100, "--batch-size", 64, "--quiet"]
    f, g, loc = inp.out("ssl_ft_f"), inp.out("ssl_ft_g"), inp.out("ssl_ft_loc")
    cli(["ssl", "train", "--role", "f", "--out", f, *tiny])
    cli(["ssl", "train", "--role", "g", "--out", g, *tiny])
    cli(["ssl", "localize", "--f", f, "--g", g, "--n-points", 40, "--k", 10, "--out", loc, "--quiet"])
    out = inp.out("ssl_finetune")
    args = ["ssl", "finetune", "--f", f, "--localize", loc, "--n-train", 150, "--n-test", 100, "--epochs", 1]
    cli([*args, "--seeds", "0,1", "--out", out, "--quiet"])
    return out


def make_ssl_demo(inp: Inputs) -> Path:
    out = inp.out("ssl_demo")
    args = ["ssl", "demo", "--data", "digits", "--width", 4, "--epochs", 2, "--supervised-epochs", 1, "--n-shared", 200]
    cli(args + ["--n-candidate", 100, "--n-independent", 100, "--n-probe", 200, "--out", out, "--quiet"])
    return out


def make_adversarial_demo(inp: Inputs) -> Path:
    out = inp.out("adversarial_demo")
    args = ["adversarial", "demo", "--data", "digits", "--n-pool", 40, "--n-test", 20, "--n-models", 4, "--epochs", 1]
    cli(args + ["--workers", 0, "--out", out, "--quiet"])
    return out


def make_llm_memhunter_grid(inp: Inputs) -> Path:
    out = inp.out("llm_memhunter_grid")
    args = ["llm", "memhunter-grid", "--out", out, "--seeds", "0,1", "--texts", 6, "--repeats", 2, "--base-texts", 20]
    cli(
        args
        + ["--steps", 10, "--d-model", 16, "--layers", 1, "--sizes", 3, "--repetitions", 5, "--budget", 2, "--quiet"]
    )
    return out


def make_sharpness_tabular(inp: Inputs) -> Path:
    out = inp.out("sharpness_tabular")
    args = ["sharpness", "tabular", "--rows", 200, "--epochs", 1, "--timesteps", 5, "--samples", 30]
    cli([*args, "--out", out, "--quiet"])
    return out


def make_sharpness_grid(inp: Inputs) -> Path:
    out = inp.out("sharpness_grid")
    args = ["sharpness", "grid", "--seeds", "0,1", "--epochs", 2, "--generations", 60, "--steps", 5]
    cli(args + ["--out", out, "--quiet"])
    return out


def make_spurious_toy(inp: Inputs) -> Path:
    out = inp.out("spurious_toy")
    cli(["spurious", "toy", "--n", "100", "--d", "50", "--epochs", "50", "--out", out, "--quiet"])
    return out


def make_spurious_demo(inp: Inputs) -> Path:
    out = inp.out("spurious_demo")
    cli(["spurious", "demo", "--dataset", "digits", "--n-train", "300", "--epochs", "2", "--out", out, "--quiet"])
    return out


def make_icl_train(inp: Inputs) -> Path:
    out = inp.out("icl_train")
    cli(
        ["icl", "train", "--K", "64", "--N", "8", "--seeds", "0,1", "--steps", "40", "--lr", "0.3", "--hidden", "16"]
        + ["--eval-every", "10", "--eval-n", "200", "--out", out, "--quiet"]
    )
    return out


def make_icl_sweep(inp: Inputs) -> Path:
    out = inp.out("icl_sweep")
    cli(
        ["icl", "sweep", "--K", "16,64,inf", "--N", "4,8", "--seeds", "0,1", "--steps", "30", "--lr", "0.3"]
        + ["--hidden", "8", "--eval-every", "10", "--eval-n", "128", "--mlp-K", "16,32", "--mlp-steps", "30"]
        + ["--workers", "1", "--n-boot", "20", "--out", out, "--quiet"]
    )
    return out


@dataclass(frozen=True)
class ReportCase:
    kind: str  # names the screenshot: docs/img/report_<kind>.png
    command: str  # the verb that writes this report
    make: Callable[[Inputs], Path]  # runs the verb on small data, returns the run folder


REPORT_CASES: list[ReportCase] = [
    ReportCase("tabular_audit", "rote tabular audit", make_tabular_audit),
    ReportCase("tabular_augment", "rote tabular augment", make_tabular_augment),
    ReportCase("tabular_train", "rote tabular train", make_tabular_train),
    ReportCase("tabular_quality", "rote tabular quality", make_tabular_quality),
    ReportCase("tabular_experiment", "rote tabular experiment", make_tabular_experiment),
    ReportCase("demo", "rote demo", make_demo),
    ReportCase("llm_train_tiny", "rote llm train-tiny", make_llm_train_tiny),
    ReportCase("llm_extract", "rote llm extract", make_llm_extract),
    ReportCase("llm_extract_prompted", "rote llm extract --prompted", make_llm_extract_prompted),
    ReportCase("llm_membership", "rote llm membership", make_llm_membership),
    ReportCase("llm_detect_dataset", "rote llm detect-dataset", make_llm_detect_dataset),
    ReportCase("llm_probe_demo", "rote llm probe-demo", make_llm_probe_demo),
    ReportCase("llm_probe", "rote llm probe", make_llm_probe),
    ReportCase("llm_probe_grid", "rote llm probe-grid", make_llm_probe_grid),
    ReportCase("llm_suppress", "rote llm suppress", make_llm_suppress),
    ReportCase("llm_memhunter_demo", "rote llm memhunter-demo", make_llm_memhunter_demo),
    ReportCase("llm_memhunter_grid", "rote llm memhunter-grid", make_llm_memhunter_grid),
    ReportCase("fairness_metrics", "rote fairness metrics", make_fairness_metrics),
    ReportCase("fairness_memorization", "rote fairness memorization", make_fairness_memorization),
    ReportCase("fairness_bound", "rote fairness bound", make_fairness_bound),
    ReportCase("fairness_audit", "rote fairness audit", make_fairness_audit),
    ReportCase("fairness_example", "rote fairness example", make_fairness_example),
    ReportCase("sharpness_toy", "rote sharpness toy", make_sharpness_toy),
    ReportCase("sharpness_fashion", "rote sharpness mnist --dataset fashion-mnist", make_sharpness_fashion),
    ReportCase("sharpness_grid", "rote sharpness grid", make_sharpness_grid),
    ReportCase("sharpness_tabular", "rote sharpness tabular", make_sharpness_tabular),
    ReportCase("spurious_toy", "rote spurious toy", make_spurious_toy),
    ReportCase("spurious_demo", "rote spurious demo", make_spurious_demo),
    ReportCase("icl_train", "rote icl train", make_icl_train),
    ReportCase("icl_sweep", "rote icl sweep", make_icl_sweep),
    ReportCase("ssl_demo", "rote ssl demo", make_ssl_demo),
    ReportCase("ssl_finetune", "rote ssl finetune", make_ssl_finetune),
    ReportCase("adversarial_demo", "rote adversarial demo", make_adversarial_demo),
]
