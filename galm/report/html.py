"""Rendering of report sections into one self-contained HTML file (inline CSS, PNGs as base64 data
URIs, no scripts, no external resources) and into Markdown."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Union

from galm.report.tables import Table, html_table, markdown_table

__all__ = ["Figure", "Section", "Text", "render_html", "render_markdown"]


@dataclass
class Text:
    """A paragraph of plain text."""

    text: str


@dataclass
class Figure:
    """A PNG image with its caption."""

    png: bytes
    caption: str


Block = Union[Text, Table, Figure]


@dataclass
class Section:
    """A titled part of the report."""

    title: str
    blocks: list[Block] = field(default_factory=list)


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
h3 { margin-top: 1.4em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f0f0f0; }
tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
p.note { font-size: 0.85em; color: #555; }
nav ul { columns: 2; }
"""


def _anchor(index: int) -> str:
    return f"section-{index}"


def render_html(title: str, intro: str, sections: list[Section]) -> str:
    """One HTML document; every image embedded as ``data:image/png;base64,``."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>",
        "<nav><ul>" + "".join(f'<li><a href="#{_anchor(i)}">{html.escape(s.title)}</a></li>'
                              for i, s in enumerate(sections)) + "</ul></nav>",
    ]
    for i, section in enumerate(sections):
        parts.append(f'<h2 id="{_anchor(i)}">{html.escape(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Text):
                parts.append(f"<p>{html.escape(block.text)}</p>")
            elif isinstance(block, Table):
                parts.append(f"<h3>{html.escape(block.title)}</h3>")
                parts.append(html_table(block))
                if block.note:
                    parts.append(f'<p class="note">{html.escape(block.note)}</p>')
            elif isinstance(block, Figure):
                data = base64.b64encode(block.png).decode("ascii")
                parts.append(f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
                             f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def render_markdown(title: str, intro: str, sections: list[Section]) -> str:
    """The same sections as Markdown; figures are named (they are embedded in the HTML report)."""
    lines = [f"# {title}", "", intro, ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Text):
                lines += [block.text, ""]
            elif isinstance(block, Table):
                lines += [f"### {block.title}", "", markdown_table(block), ""]
                if block.note:
                    lines += [block.note, ""]
            elif isinstance(block, Figure):
                lines += [f"_Figure (in report.html): {block.caption}_", ""]
    return "\n".join(lines)
