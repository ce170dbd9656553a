"""The report as one self-contained HTML page: inline CSS, plots as base64 PNG, no scripts,
no fonts or anything else fetched from elsewhere (it opens offline and from an email)."""

from __future__ import annotations

import base64
import html
import re

from kws.report.doc import Figure, Report, Row, Section, Table, Text

GENERATOR = '<meta name="generator" content="kws report">'

CSS = """
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#f6f7f9; --card:#fff; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
main { max-width:1240px; margin:0 auto; padding:28px 24px 48px; }
header h1 { margin:0 0 4px; font-size:26px; letter-spacing:-0.01em; }
header p { margin:0; color:var(--muted); font-size:13px; }
.cards { display:grid; grid-template-columns:repeat(4,minmax(0,1fr)); gap:12px; margin:22px 0 14px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card .label { font-size:13px; font-weight:600; color:var(--muted); }
.card .value { font-size:28px; font-weight:650; margin:2px 0; font-variant-numeric:tabular-nums; }
.card .detail { font-size:12px; color:var(--muted); }
nav { margin:6px 0 18px; font-size:13px; }
nav a { color:var(--accent); text-decoration:none; margin-right:14px; white-space:nowrap; }
nav a.off { color:var(--muted); }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:18px 22px;
  margin:0 0 16px; }
section h2 { margin:0 0 10px; font-size:19px; }
section.missing { padding:12px 22px; }
section.missing h2 { font-size:16px; color:var(--muted); margin:0; display:inline; }
section.missing p { display:inline; margin:0 0 0 10px; color:var(--muted); font-size:13px; }
p { margin:8px 0; max-width:90ch; }
code { background:#f1f5f9; padding:1px 5px; border-radius:4px; font-size:90%; }
.table-wrap { overflow-x:auto; margin:12px 0; }
table { border-collapse:collapse; font-size:13px; font-variant-numeric:tabular-nums; }
caption { text-align:left; font-weight:600; padding:0 0 6px; }
th, td { padding:5px 9px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
th, td.num, td:first-child { white-space:nowrap; }
th { background:#f3f4f6; font-weight:600; }
tr:nth-child(even) td { background:#fafafa; }
td.num, th.num { text-align:right; }
.row { display:flex; gap:14px 20px; align-items:flex-start; flex-wrap:wrap; }
.row > figure { flex:1 1 480px; min-width:0; max-width:680px; }
.row > .table-wrap { flex:0 1 auto; }
figure { margin:14px 0; }
figure img { display:block; max-width:100%; height:auto; border:1px solid var(--line); border-radius:6px; }
figcaption { color:var(--muted); font-size:13px; margin-top:6px; }
@media (max-width:800px) { .cards { grid-template-columns:repeat(2,minmax(0,1fr)); } }
"""

_NUMBER = r"[−\-+]?[\d.,]+\s*(?:%|×|[kMG]|B|ms|µJ|s|days|MHz)?"
_NUMERIC = re.compile(rf"^(?:{_NUMBER}|—)(?:\s*[/→]\s*(?:{_NUMBER}|—))?$")


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _cell(value: str, numeric: bool, tag: str = "td") -> str:
    cls = ' class="num"' if numeric else ""
    return f"<{tag}{cls}>{html.escape(value)}</{tag}>"


def _numeric_columns(t: Table) -> list[bool]:
    """A column is right-aligned when every cell in it reads as a number (with a unit)."""
    return [bool(t.rows) and all(_NUMERIC.match(row[i]) for row in t.rows) for i in range(len(t.header))]


def _table(t: Table) -> str:
    caption = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    numeric = _numeric_columns(t)
    head = "".join(_cell(h, n, "th") for h, n in zip(t.header, numeric))
    body = "".join("<tr>" + "".join(_cell(v, n) for v, n in zip(row, numeric)) + "</tr>" for row in t.rows)
    return f'<div class="table-wrap"><table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _figure(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(f.caption)}" '
            f'data-name="{html.escape(f.name)}"><figcaption>{_inline(f.caption)}</figcaption></figure>')


def _block(b) -> str:
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        return _figure(b)
    if isinstance(b, Text):
        return f"<p>{_inline(b.text)}</p>"
    if isinstance(b, Row):
        return '<div class="row">' + "".join(_block(x) for x in b.blocks) + "</div>"
    raise TypeError(f"unknown report block {type(b).__name__}")


def _section(s: Section) -> str:
    if s.missing:
        return (f'<section id="{s.key}" class="missing"><h2>{html.escape(s.title)}</h2>'
                f"<p>Not in this run: {_inline(s.missing)}.</p></section>")
    return f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>' + "".join(_block(b) for b in s.blocks) + "</section>"


def render_html(report: Report) -> str:
    cards = "".join(
        f'<div class="card"><div class="label">{html.escape(h.label)}</div><div class="value">{html.escape(h.value)}</div>'
        f'<div class="detail">{html.escape(h.detail)}</div></div>' for h in report.headline)
    off = ' class="off"'
    nav = "".join(f'<a href="#{s.key}"{off if s.missing else ""}>{html.escape(s.title)}</a>' for s in report.sections)
    body = "".join(_section(s) for s in report.sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"{GENERATOR}<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(report.title)}</title><style>{CSS}</style></head>\n<body><main>"
            f"<header><h1>{html.escape(report.title)}</h1><p>{html.escape(report.subtitle)}</p></header>"
            f'<div class="cards">{cards}</div><nav>{nav}</nav>\n{body}\n</main></body></html>\n')
