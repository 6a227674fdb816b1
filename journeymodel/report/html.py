"""Assemble the report page: one self-contained HTML file (inline CSS, base64 PNGs, no scripts,
no fonts or links to fetch), readable offline and printable."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from typing import Any

from journeymodel.report.figure import Figure, Section, Table

CSS = """
:root { --ink: #1d2733; --muted: #5b6672; --line: #dde3ea; --accent: #1f4e79; }
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: var(--ink); background: #f4f6f8; line-height: 1.45; }
header { background: var(--accent); color: #fff; padding: 22px 32px 14px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0 0 10px; color: #d8e4f0; font-size: 14px; }
nav a { color: #fff; margin-right: 18px; font-size: 14px; text-decoration: none;
  border-bottom: 1px solid rgba(255,255,255,.5); }
main { max-width: 1180px; margin: 0 auto; padding: 8px 24px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  margin: 22px 0; padding: 8px 26px 18px; }
section h2 { font-size: 21px; margin: 14px 0 6px; color: var(--accent); }
section h3 { font-size: 15px; margin: 18px 0 6px; }
p.intro { color: var(--muted); margin: 0 0 10px; max-width: 900px; }
dl.facts { display: flex; flex-wrap: wrap; gap: 8px 12px; margin: 8px 0 14px; }
dl.facts div { background: #eef3f8; border-radius: 6px; padding: 6px 12px; }
dl.facts dt { font-size: 12px; color: var(--muted); }
dl.facts dd { margin: 0; font-size: 17px; font-weight: 600; }
figure { margin: 16px 0 22px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption, p.caption { font-size: 13px; color: var(--muted); margin-top: 6px; max-width: 1000px; }
figcaption strong, p.caption strong { color: var(--ink); }
div.table { overflow-x: auto; margin: 10px 0 20px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: right;
  white-space: nowrap; }
th { background: #f7f9fb; font-weight: 600; white-space: normal; vertical-align: bottom; }
th.row { text-align: left; }
td.text { text-align: left; white-space: normal; }
footer { text-align: center; color: var(--muted); font-size: 12px; padding: 0 0 30px; }
@media print { body { background: #fff; } section { break-inside: avoid-page; border: 0; }
  header { background: #fff; color: var(--ink); } header p, nav a { color: var(--ink); } }
"""


def render_page(title: str, subtitle: str, sections: Sequence[Section], footer: str) -> str:
    """The whole HTML document."""
    nav = " ".join(f'<a href="#{_e(s.id)}">{_e(s.title)}</a>' for s in sections)
    body = "\n".join(render_section(s) for s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header>\n<h1>{_e(title)}</h1>\n<p>{_e(subtitle)}</p>\n<nav>{nav}</nav>\n</header>\n"
        f"<main>\n{body}\n</main>\n<footer>{_e(footer)}</footer>\n</body>\n</html>\n")


def render_section(section: Section) -> str:
    parts = [f'<section id="{_e(section.id)}">', f"<h2>{_e(section.title)}</h2>"]
    if section.intro:
        parts.append(f'<p class="intro">{_e(section.intro)}</p>')
    if section.facts:
        items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in section.facts)
        parts.append(f'<dl class="facts">{items}</dl>')
    for item in section.items:
        parts.append(render_figure(item) if isinstance(item, Figure) else render_table(item))
    parts.append("</section>")
    return "\n".join(parts)


def render_figure(fig: Figure) -> str:
    width, height = fig.size
    data = base64.b64encode(fig.png).decode("ascii")
    return (f'<figure id="fig-{_e(fig.key)}">\n'
            f'<img src="data:image/png;base64,{data}" alt="{_e(fig.title)}" '
            f'width="{width}" height="{height}">\n'
            f"<figcaption><strong>{_e(fig.title)}.</strong> {_e(fig.caption)}</figcaption>\n"
            "</figure>")


def render_table(table: Table) -> str:
    frame = table.frame
    index_name = frame.index.name or ""
    head = f'<th class="row">{_e(index_name)}</th>' + "".join(
        f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = []
    for i, (label, row) in enumerate(frame.iterrows()):
        cells = []
        for j, value in enumerate(row.tolist()):
            style = table.styles[i][j] if table.styles is not None else ""
            cls = ' class="text"' if isinstance(value, str) and not _numeric(value) else ""
            attr = f' style="{_e(style)}"' if style else ""
            cells.append(f"<td{cls}{attr}>{_e(_cell(value))}</td>")
        rows.append(f'<tr><th class="row">{_e(label)}</th>{"".join(cells)}</tr>')
    return (f'<div class="table" id="table-{_e(table.key)}">\n<h3>{_e(table.title)}</h3>\n'
            f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows)
            + f"\n</tbody>\n</table>\n<p class=\"caption\">{_e(table.caption)}</p>\n</div>")


def _cell(value: Any) -> str:
    """A float to about 3 significant digits (``1,234``, ``0.279``, ``0.000012``), never in
    scientific notation (:func:`journeymodel.io.formatting.number`)."""
    if isinstance(value, float):
        from journeymodel.io.formatting import number

        return number(value, 3)
    return str(value)


#: A number as the tables print it (``1,234``, ``-0.32``, ``+0.36``, ``12.3%``, ``>99.9%``),
#: or an interval of two (``70.9 to 102.3``, ``+0.19 [+0.17, +0.22]``): right-aligned.
_NUMBER = r"[<>]?[+-]?\d[\d,]*(\.\d+)?%?"
_NUMERIC = re.compile(rf"{_NUMBER}(\s+to\s+{_NUMBER}|\s+\[{_NUMBER},\s*{_NUMBER}\])?")


def _numeric(text: str) -> bool:
    """Whether a text cell holds a number (or an interval) and is aligned like one.

    Examples
    --------
    >>> [_numeric(t) for t in ("1,234", "-0.32", "+0.36", ">99.9%", "70.9 to 102.3")]
    [True, True, True, True, True]
    >>> [_numeric(t) for t in ("+0.19 [+0.17, +0.22]", "-", "call", "S1: entry", "1x2")]
    [True, False, False, False, False]
    """
    plain = text.replace(",", "").replace(".", "").replace("%", "").replace("-", "").strip()
    return plain.isdigit() or _NUMERIC.fullmatch(text.strip()) is not None


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
