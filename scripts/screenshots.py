"""`make screenshots`: one full-page PNG per report kind, docs/img/report_<kind>.png (1200 px wide).

Each report is made by the real `rote` verb on small but representative data (the table `REPORT_CASES` in
tests/browser.py, shared with the browser test, at the `DOCS` scale), opened in headless Chromium (Debian's
`chromium` package) and checked as the test checks it; the script exits 1 if any page has a defect.

    python scripts/screenshots.py                       # every kind, into docs/img/
    python scripts/screenshots.py --kinds demo,llm_extract --scale test --keep runs/screens
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser import DOCS, REPORT_CASES, TEST, Browser, BrowserMissing, Inputs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    kinds = [c.kind for c in REPORT_CASES]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder for report_<kind>.png")
    ap.add_argument("--kinds", default=",".join(kinds), help="comma-separated, among: " + ", ".join(kinds))
    ap.add_argument(
        "--scale",
        choices=("docs", "test"),
        default="docs",
        help="docs: representative runs (a few minutes); test: the browser test's tiny runs (seconds)",
    )
    ap.add_argument("--width", type=int, default=1200, help="viewport width in CSS pixels")
    ap.add_argument("--keep", type=Path, default=None, help="keep inputs and run folders here (default: a temp dir)")
    args = ap.parse_args(argv)

    wanted = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(wanted) - set(kinds))
    if unknown:
        ap.error(f"unknown kind(s) {', '.join(unknown)}; choose among {', '.join(kinds)}")
    cases = [c for c in REPORT_CASES if c.kind in wanted]
    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    failed = 0
    here = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="rote-screens-") as tmp:
        work = (args.keep or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        # Work inside the folder with relative paths, so that the reports name `predictions.csv`, not /tmp/...
        os.chdir(work)
        try:
            inputs = Inputs(Path("."), DOCS if args.scale == "docs" else TEST)
            try:
                browser = Browser(width=args.width).start()
            except BrowserMissing as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            try:
                for case in cases:
                    start = time.perf_counter()
                    folder = case.make(inputs)
                    png = out_dir / f"report_{case.kind}.png"
                    check = browser.check(folder / "report.html", screenshot=png)
                    problems = check.problems()
                    failed += bool(problems)
                    shown = png.relative_to(ROOT) if png.is_relative_to(ROOT) else png
                    print(
                        f"{case.kind:24s} {time.perf_counter() - start:6.1f} s  {len(check.images)} images, "
                        f"{len(check.tables)} tables -> {shown}" + "".join(f"\n    DEFECT {p}" for p in problems),
                        flush=True,
                    )
            finally:
                browser.close()
        finally:
            os.chdir(here)
    return 1 if failed else 0


if __name__ == "__main__":  # the experiment's grid points run in spawned processes, which import this module
    sys.exit(main())
