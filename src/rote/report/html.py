"""Self-contained HTML reports: one file, inline CSS, images as data URIs, no JavaScript, no external URLs.

Every rote domain builds its `report.html` with the same `Report`: a title, a summary table of headline numbers,
headings, paragraphs, tables (with cells to highlight), embedded PNG images and the run's configuration.
Everything the caller passes in (titles, text, column names, cell values, configuration) is HTML-escaped, so a
table read from an untrusted file cannot inject markup. Rendering is deterministic: the same calls give the same
string, and nothing time-dependent is added unless the caller puts it in (for example in the configuration).

    report = Report("Tabular memorization audit", subtitle="adult, TabDDPM samples")
    report.add_summary({"memorization ratio": "12.40%", "exact copies": 31})
    report.add_table(frame, caption="Most-copied training rows", highlight={1: {"age"}})
    report.add_figure(fig)
    run.write_text("report.html", report.render())
"""

from __future__ import annotations

import base64
import math
import numbers
from collections.abc import Mapping
from html import escape as _html_escape
from typing import Any

import numpy as np
import pandas as pd

from rote.core.errors import DataError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body {
  margin: 0; padding: 2rem 1rem 3rem; background: #fafafa; color: #1f2328;
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 60rem; margin: 0 auto; }
header { border-bottom: 2px solid #d0d7de; margin-bottom: 1.5rem; padding-bottom: 0.5rem; }
h1 { font-size: 1.7rem; margin: 0 0 0.25rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 0.6rem; border-bottom: 1px solid #e4e7eb; padding-bottom: 0.2rem; }
h3 { font-size: 1.08rem; margin: 1.4rem 0 0.4rem; }
h4, h5, h6 { font-size: 1rem; margin: 1.2rem 0 0.3rem; }
p { margin: 0.5rem 0 0.9rem; }
.subtitle { color: #57606a; margin: 0; }
.table-wrap { overflow-x: auto; margin: 0.4rem 0 1.2rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
caption { caption-side: top; text-align: left; color: #57606a; padding: 0 0 0.3rem; }
th, td { padding: 0.3rem 0.65rem; border-bottom: 1px solid #e4e7eb; text-align: left; vertical-align: top; }
thead th { background: #eef1f4; border-bottom: 2px solid #d0d7de; white-space: nowrap; }
tbody tr:nth-child(even) { background: #f3f5f7; }
tbody tr:nth-child(odd) { background: #ffffff; }
td.num, .summary td {
  text-align: right; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-variant-numeric: tabular-nums;
}
.summary th { font-weight: 600; background: transparent; border-bottom: 1px solid #e4e7eb; white-space: nowrap; }
.summary td { text-align: left; }
td.missing { color: #8c959f; font-style: italic; }
td.diff { background: #ffe2b8; font-weight: 600; }
.note { color: #57606a; font-size: 0.88rem; }
figure { margin: 0.8rem 0 1.4rem; }
.span-block { margin: 0.3rem 0 1rem; padding: 0.6rem 0.7rem; background: #fff; border: 1px solid #e4e7eb;
  white-space: pre-wrap; font: 0.85rem/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.span-block mark { background: #ffd38a; }
figure img { max-width: 100%; height: auto; border: 1px solid #e4e7eb; background: #fff; }
figcaption { color: #57606a; font-size: 0.9rem; margin-top: 0.3rem; }
details { margin: 1rem 0; border: 1px solid #d0d7de; border-radius: 4px; background: #fff; }
summary { cursor: pointer; padding: 0.45rem 0.7rem; font-weight: 600; }
pre { margin: 0; padding: 0.7rem; overflow-x: auto; font-size: 0.85rem; border-top: 1px solid #e4e7eb;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
footer { margin-top: 3rem; color: #8c959f; font-size: 0.8rem; }
""".strip()


def escape(value: Any) -> str:
    """HTML-escape `str(value)`, quotes included (safe in text and in attribute values)."""
    return _html_escape(str(value), quote=True)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def format_float(value: float, digits: int | None = 6) -> str:
    """A float for a table cell: `digits` significant digits, or with `digits=None` the shortest text that reads
    back as the same float (trailing ".0" dropped). NaN -> "NaN", infinities -> "inf" / "-inf"."""
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if digits is None:
        text = repr(v)
        return text[:-2] if text.endswith(".0") else text
    return f"{v:.{digits}g}"


def format_value(value: Any, digits: int | None = 6) -> str:
    """Plain text of one table cell (not yet escaped); missing values are "NA"."""
    if _is_missing(value):
        return "NA"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return format_float(value, digits)
    return str(value)


def format_summary_value(value: Any) -> str:
    """Plain text of a headline number: integers with thousands separators, floats with 4 significant digits,
    NaN as "undefined", None as "none", booleans as yes / no; strings unchanged (callers pre-format ratios)."""
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        v = float(value)
        return "undefined" if math.isnan(v) else format_float(v, 4)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and not _is_missing(value)


def png_data_uri(png: bytes) -> str:
    """`data:image/png;base64,...` for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class Report:
    """An HTML report built block by block, rendered to one self-contained string.

    title, subtitle: shown at the top (and `title` as the page title).
    Blocks appear in the order they are added; `render` can be called any number of times.
    """

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title, self.subtitle = title, subtitle
        self._blocks: list[str] = []

    # ------------------------------------------------------------------------------------------ blocks

    def add_summary(self, items: Mapping[str, Any], caption: str = "") -> None:
        """A two-column table of headline numbers: label, value (see `format_summary_value`)."""
        rows = "".join(
            f'<tr><th scope="row">{escape(k)}</th><td>{escape(format_summary_value(v))}</td></tr>'
            for k, v in items.items()
        )
        cap = f"<caption>{escape(caption)}</caption>" if caption else ""
        self._blocks.append(f'<div class="table-wrap"><table class="summary">{cap}<tbody>{rows}</tbody></table></div>')

    def add_heading(self, text: str, level: int = 2) -> None:
        """A heading, `level` 2 to 6 (level 1 is the report title)."""
        if not isinstance(level, int) or not 2 <= level <= 6:
            raise ValueError(f"heading level must be an integer from 2 to 6, got {level!r}")
        self._blocks.append(f"<h{level}>{escape(text)}</h{level}>")

    def add_text(self, text: str, *, note: bool = False) -> None:
        """A paragraph of plain text (escaped); `note=True` sets it in smaller, muted type."""
        cls = ' class="note"' if note else ""
        self._blocks.append(f"<p{cls}>{escape(text)}</p>")

    def add_marked_text(self, label: str, text: str, start: int, length: int) -> None:
        """`text` in a monospace block under `label`, characters [start, start + length) highlighted (a copied
        span, a matched row); everything escaped."""
        start = max(0, min(int(start), len(text)))
        end = max(start, min(start + int(length), len(text)))
        body = f"{escape(text[:start])}<mark>{escape(text[start:end])}</mark>{escape(text[end:])}"
        self._blocks.append(f'<p class="note">{escape(label)}</p><div class="span-block">{body}</div>')

    def add_table(
        self,
        frame: pd.DataFrame,
        caption: str = "",
        max_rows: int = 50,
        highlight: Mapping[int, set[str]] | None = None,
        *,
        digits: int | None = 6,
    ) -> None:
        """A table of `frame`'s columns (its index is not shown; `reset_index()` first to show it).

        max_rows: rows beyond this are left out, with a note saying how many.
        highlight: {row position (0-based, as in `frame.iloc`): set of column names} cells to mark, e.g. values
            that differ from a reference row.
        digits: significant digits of floats; None shows each float exactly (shortest round-trip text).
        """
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"add_table needs a pandas DataFrame, got {type(frame).__name__}")
        if max_rows < 0:
            raise ValueError(f"max_rows must be >= 0, got {max_rows}")
        highlight = highlight or {}
        names = [str(c) for c in frame.columns]
        head = "".join(f'<th scope="col">{escape(n)}</th>' for n in names)
        shown = frame.iloc[:max_rows]
        body = []
        for pos, values in enumerate(shown.itertuples(index=False, name=None)):
            marked = {str(c) for c in highlight.get(pos, ())}
            cells = []
            for name, value in zip(names, values):
                classes = []
                if _is_number(value):
                    classes.append("num")
                elif _is_missing(value):
                    classes.append("missing")
                if name in marked:
                    classes.append("diff")
                cls = f' class="{" ".join(classes)}"' if classes else ""
                cells.append(f"<td{cls}>{escape(format_value(value, digits))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{escape(caption)}</caption>" if caption else ""
        block = (
            f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )
        if len(frame) > len(shown):
            block += f'<p class="note">Showing the first {len(shown):,} of {len(frame):,} rows.</p>'
        self._blocks.append(block)

    def add_image(self, png: bytes, alt: str, caption: str = "") -> None:
        """A PNG image embedded as a base64 data URI (the file needs nothing beside it)."""
        if not isinstance(png, (bytes, bytearray)) or not bytes(png[:8]) == PNG_SIGNATURE:
            raise DataError(
                "add_image: expected the bytes of a PNG image (they start with the PNG signature); "
                "use figure_to_png(fig) for a matplotlib figure"
            )
        cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f'<figure><img src="{png_data_uri(bytes(png))}" alt="{escape(alt)}">{cap}</figure>')

    def add_figure(self, fig: Any, alt: str = "", caption: str = "") -> None:
        """A matplotlib figure, rendered to PNG (and closed) and embedded. `alt` defaults to the figure's
        first axes title."""
        from rote.report.plots import figure_to_png

        if not alt:
            titles = [ax.get_title() for ax in fig.get_axes() if ax.get_title()]
            alt = titles[0] if titles else "figure"
        self.add_image(figure_to_png(fig), alt=alt, caption=caption)

    def add_config(self, config: Mapping[str, Any], label: str = "Configuration") -> None:
        """The run's configuration as indented JSON inside a collapsed <details> block."""
        from rote.core.runs import to_json_text

        text = to_json_text(dict(config)).rstrip("\n")
        self._blocks.append(f"<details><summary>{escape(label)}</summary><pre>{escape(text)}</pre></details>")

    # ------------------------------------------------------------------------------------------ output

    def render(self) -> str:
        """The whole report as one HTML document (UTF-8, inline CSS, no scripts, no external resources)."""
        import rote

        sub = f'<p class="subtitle">{escape(self.subtitle)}</p>' if self.subtitle else ""
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(self.title)}</title>",
            f"<style>\n{CSS}\n</style>",
            "</head>",
            "<body>",
            "<main>",
            f"<header><h1>{escape(self.title)}</h1>{sub}</header>",
            *self._blocks,
            f"<footer>Made with rote {escape(rote.__version__)}.</footer>",
            "</main>",
            "</body>",
            "</html>",
        ]
        return "\n".join(parts) + "\n"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of `frame` (index not shown); cells as in report tables."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for values in frame.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(format_value(v, 4).replace("|", "\\|") for v in values) + " |")
    return "\n".join(lines) + "\n"
