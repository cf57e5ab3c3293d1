"""A self-contained HTML page: inline CSS, tables, and figures embedded as base64 data URIs."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence

import pandas as pd

from prunebench.reports.figures import ReportFigure

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 1.5em 2em 4em; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-top: 1.5em; }
.meta { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #d0d0d0; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f5; }
tr.flag td { background: #fff4e0; }
tr.failed td { background: #fde8e8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.88em; margin-top: 0.3em; }
nav ul { columns: 2; font-size: 0.92em; }
.empty { color: #777; font-style: italic; }
code { background: #f4f4f4; padding: 0 0.25em; }
"""

# Marks the page with how many images decoded, so a headless browser check can find broken ones.
_IMAGE_CHECK = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute('data-images-loaded', String(images.length - broken.length));
  document.body.setAttribute('data-images-broken', String(broken.length));
});
"""

_NUMBER = re.compile(r"^[+\-−]?[\d.,]+( ± [\d.,]+)?( ?[a-z%]+)?$")


def slug(text: str) -> str:
    """An HTML id from a heading."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


class HtmlReport:
    """Accumulates headings, text, tables and figures; ``render`` returns the whole page."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []
        self.toc: list[tuple[str, str]] = []

    def heading(self, text: str, level: int = 2) -> None:
        """A section heading; level-2 headings go into the table of contents."""
        anchor = slug(text)
        if any(a == anchor for a, _ in self.toc):
            anchor = f"{anchor}-{len(self.toc)}"
        if level == 2:
            self.toc.append((anchor, text))
        self.parts.append(f'<h{level} id="{anchor}">{html.escape(text)}</h{level}>')

    def text(self, text: str, css_class: str | None = None) -> None:
        """A paragraph of escaped text."""
        attr = f' class="{css_class}"' if css_class else ""
        self.parts.append(f"<p{attr}>{html.escape(text)}</p>")

    def raw(self, markup: str) -> None:
        """Trusted markup written by this package (never data from MLflow)."""
        self.parts.append(markup)

    def table(self, frame: pd.DataFrame, row_classes: Sequence[str] | None = None) -> None:
        """A table of escaped cells; numeric-looking cells are right-aligned."""
        if frame.empty:
            self.text("No data.", "empty")
            return
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
        rows = []
        for i, values in enumerate(frame.itertuples(index=False)):
            cells = []
            for value in values:
                if hasattr(value, "__html__"):  # markup built by this package (run links)
                    cells.append(f"<td>{value.__html__()}</td>")
                    continue
                text = (
                    ""
                    if value is None or (not isinstance(value, str) and pd.isna(value))
                    else str(value)
                )
                css = ' class="num"' if _NUMBER.match(text) else ""
                cells.append(f"<td{css}>{html.escape(text)}</td>")
            css_class = row_classes[i] if row_classes is not None else ""
            attr = f' class="{css_class}"' if css_class else ""
            rows.append(f"<tr{attr}>{''.join(cells)}</tr>")
        self.parts.append(
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def figure(self, figure: ReportFigure) -> None:
        """An embedded PNG (base64 data URI) with its title as alt text and its caption."""
        data = base64.b64encode(figure.png).decode("ascii")
        caption = html.escape(figure.title) + (
            f" — {html.escape(figure.caption)}" if figure.caption else ""
        )
        self.parts.append(
            f'<figure id="fig-{html.escape(figure.name)}"><img alt="{html.escape(figure.title)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>'
        )

    def render(self, meta: str = "") -> str:
        """The complete page."""
        toc = "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in self.toc)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style>"
            f"<script>{_IMAGE_CHECK}</script></head><body>"
            f'<h1>{html.escape(self.title)}</h1><p class="meta">{html.escape(meta)}</p>'
            f"<nav><ul>{toc}</ul></nav>{''.join(self.parts)}</body></html>\n"
        )


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""
    if frame.empty:
        return "_No data._\n"

    def cell(value) -> str:
        text = (
            "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
        )
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) for c in frame.columns) + " |",
        "|" + "|".join("---" for _ in frame.columns) + "|",
    ]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"
