"""``report.html`` (one self-contained page: figures as PNG data, a small inline script that
sorts the tables, print-friendly CSS) and the CSV files beside it.

Everything shown that came from the gradebook or a submission (student ids, failure messages,
reasons) is escaped, and control characters are made visible (:func:`coursekit.text.clean`).
"""

from __future__ import annotations

import base64
import csv
import functools
import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

from coursekit.report import analysis, figures
from coursekit.report.analysis import Item
from coursekit.report.build import Report
from coursekit.text import clean, number

PAGE = "report.html"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# -- formatting ---------------------------------------------------------------------------------

def esc(value: object) -> str:
    """Text safe to put in HTML (control characters shown as escapes)."""
    return html.escape(clean(str(value)), quote=True)


def pct(value: float | None) -> str:
    """A percentage with one decimal (``-`` for none)."""
    return "-" if value is None else f"{value:.1f}"


def corr(value: float | None) -> str:
    """A correlation with two decimals (``n/a`` for none)."""
    return "n/a" if value is None else f"{value:.2f}"


def points(value: float | None) -> str:
    """Points as the course prints them (``-`` for none)."""
    return "-" if value is None else number(round(value, 2))


def csv_number(value: float | int | None) -> str:
    """A number for a CSV file: integers as such, others to six decimals, none as empty."""
    if value is None:
        return ""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(round(float(value), 6))


def csv_text(value: object) -> str:
    """Text for a CSV file; a leading ``=``, ``+``, ``-`` or ``@`` gets a ``'`` before it so
    that a spreadsheet does not read it as a formula."""
    text = clean(str(value))
    return "'" + text if text.startswith(FORMULA_START) else text


# -- HTML building blocks -----------------------------------------------------------------------

Cell = str | tuple[str, object]  # HTML, or (HTML, sort value: a number or None)


def table(tid: str, head: Sequence[str], rows: Iterable[Sequence[Cell]], *,
          sortable: bool = False, numeric: Sequence[int] = (), caption: str = "") -> str:
    """An HTML table; the columns in ``numeric`` are right-aligned and sort by number."""
    cls = ' class="sortable"' if sortable else ""
    out = [f'<table id="{tid}"{cls}>']
    if caption:
        out.append(f"<caption>{caption}</caption>")
    out.append("<thead><tr>" + "".join(
        f'<th scope="col"{" class=num" if i in numeric else ""}>{h}</th>'
        for i, h in enumerate(head)) + "</tr></thead><tbody>")
    for row in rows:
        tds = []
        for i, cell in enumerate(row):
            content, key = (cell if isinstance(cell, tuple) else (cell, None))
            attrs = ' class="num"' if i in numeric else ""
            if i in numeric:
                attrs += f' data-v="{"" if key is None else key}"'
            tds.append(f"<td{attrs}>{content}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def wide(content: str) -> str:
    """A table that scrolls sideways on a narrow screen (and prints in full)."""
    return f'<div class="wide">{content}</div>'


def num(value: float | int | None, text: str | None = None) -> tuple[str, object]:
    """A numeric table cell: its text and its sort value."""
    shown = text if text is not None else ("-" if value is None else str(value))
    return shown, value  # made here from a number: nothing to escape


def figure(fid: str, png: bytes, alt: str, caption: str, data: str) -> str:
    """A figure embedded as PNG data, with its caption and the CSV file behind it."""
    b64 = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{fid}"><img src="data:image/png;base64,{b64}" alt="{esc(alt)}">'
            f'<figcaption>{caption} Numbers: <a href="{esc(data)}">{esc(data)}</a>.'
            "</figcaption></figure>")


# -- CSV files ----------------------------------------------------------------------------------

def write_csv(path: Path, head: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Write a CSV file in one step (a reader never sees half of it)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(head)
        writer.writerows(rows)
    os.replace(tmp, path)


def _csv_files(report: Report, folder: Path) -> None:
    stats = report.stats
    write_csv(folder / "report-modules.csv",
              ["module", "max_score", "students", "submitted", "missing", "not_gradable",
               "full", "zero", "late", "penalised", "points_off", "mean", "median",
               "mean_pct", "median_pct", "handed_in_pct"],
              ([s.name, *(csv_number(v) for v in (
                  s.max_score, s.students, s.submitted, s.missing, s.not_gradable, s.full,
                  s.zero, s.late, s.penalised, s.points_off, s.mean, s.median, s.mean_pct,
                  s.median_pct, s.handed_in_pct))] for s in stats))
    edges = analysis.HIST_EDGES
    write_csv(folder / "report-histogram.csv",
              ["module", "from_pct", "to_pct", "submissions"],
              ([s.name, str(edges[b]), str(edges[b + 1]), str(count)]
               for s in stats if s.submitted and s.max_score > 0
               for b, count in enumerate(s.hist)))
    rank = {id(it): i for i, it in enumerate(report.prose, 1)}
    every = [it for name in report.items for it in report.items[name]]
    write_csv(folder / "report-items.csv",
              ["module", "cell", "notebook", "location", "points", "submissions", "failing",
               "difficulty", "discrimination", "strong", "strong_failing",
               "strong_fail_share", "check_prose_rank"],
              ([it.module, it.cell.name, it.cell.notebook, it.location,
                *(csv_number(v) for v in (it.cell.max_score, it.n, it.failing, it.fail_rate,
                                          it.r_pb, it.strong, it.strong_failing,
                                          it.strong_fail_share, rank.get(id(it))))]
               for it in every))
    write_csv(folder / "report-messages.csv",
              ["module", "cell", "pattern", "count", "example"],
              ([it.module, it.cell.name, csv_text(g.pattern), str(g.count), csv_text(g.example)]
               for it in every for g in it.messages))
    write_csv(folder / "report-times.csv",
              ["module", "student", "submitted", "due", "days_from_due"],
              ([m.name, s, _iso(stamp), _iso(due), csv_number(days)]
               for m in report.modules for s, stamp, due, days in analysis.days_from_due(m)))
    write_csv(folder / "report-flagged.csv", ["student", "module", "reasons", "feedback"],
              ([s, m, csv_text("; ".join(e.flagged)), _rel(e.feedback, folder)]
               for (s, m), e in sorted(report.entries.items()) if e.flagged))
    names = [m.name for m in report.modules]
    head = ["student"] + [f"{n} score" for n in names] + [f"{n} status" for n in names] + \
        ["total", "max_score", "percent"]
    write_csv(folder / "report-students.csv", head, (_student_row(report, s)
                                                     for s in report.students))
    write_csv(folder / "report-behind.csv", ["student", "average_pct", "missed", "last"],
              ([b.student, csv_number(b.average_pct), str(b.missed), b.last]
               for b in report.behind))


def _rel(target: Path | None, folder: Path) -> str:
    """``target`` relative to ``folder``, with forward slashes ("" for none). A page under a
    grading root's ``feedback/`` (most of them) is placed from that folder's relative path,
    worked out once."""
    if target is None:
        return ""
    parts = target.parts
    if len(parts) > 4 and parts[-4] == "feedback":
        base = _rel_folder(str(Path(*parts[:-3])), str(folder))
        return f"{base}/{parts[-3]}/{parts[-2]}/{parts[-1]}"
    return Path(os.path.relpath(target, folder)).as_posix()


@functools.lru_cache(maxsize=64)
def _rel_folder(target: str, folder: str) -> str:
    return Path(os.path.relpath(target, folder)).as_posix()


def _iso(stamp: object) -> str:
    return stamp.isoformat(timespec="seconds") + "Z" if stamp is not None else ""  # type: ignore[attr-defined]


def _totals(report: Report, student: str) -> tuple[float, float]:
    total = sum(report.entries[(student, m.name)].score or 0.0 for m in report.modules)
    return total, sum(s.max_score for s in report.stats)


def _student_row(report: Report, student: str) -> list[str]:
    entries = [report.entries[(student, m.name)] for m in report.modules]
    total, top = _totals(report, student)
    return [student, *(csv_number(e.score) for e in entries),
            *(csv_text(e.status) for e in entries), csv_number(total), csv_number(top),
            csv_number(100.0 * total / top if top > 0 else None)]


# -- the page -----------------------------------------------------------------------------------

STYLE = """
:root { --ink: #1d2329; --muted: #5b6570; --line: #d5dbe1; --band: #f3f6f9; --warn: #b03a2e; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); margin: 0 auto; padding: 1.2rem 1.5rem 3rem; max-width: 1320px; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem;
  border-bottom: 2px solid var(--line); padding-bottom: .2rem; } h3 { margin-top: 1.4rem; }
.meta, figcaption, caption, .hint { color: var(--muted); font-size: .88rem; }
caption { text-align: left; padding: .3rem 0; }
nav ol { columns: 2; font-size: .92rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .88rem; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .55rem; text-align: left;
  vertical-align: top; }
thead th { background: var(--band); position: sticky; top: 0; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: var(--muted); font-size: .8em; }
table.sortable th[aria-sort=ascending]::after { content: " \\2191"; }
table.sortable th[aria-sort=descending]::after { content: " \\2193"; }
tbody tr:nth-child(even) { background: #fafbfc; }
.wide { overflow-x: auto; } .tall { max-height: 80vh; overflow-y: auto; }
ul.msgs { min-width: 22rem; max-width: 38rem; }
th.num { max-width: 6.5rem; }
figure { margin: 1rem 0 1.6rem; } figure img { max-width: 100%; height: auto;
  border: 1px solid var(--line); }
.status { color: var(--warn); } .flag { color: var(--warn); font-weight: 600; }
code, .loc { font: .84rem ui-monospace, SFMono-Regular, Menlo, monospace; }
ul.msgs { margin: 0; padding-left: 1rem; } ul.msgs li { margin: .1rem 0; }
.example { color: var(--muted); }
.notes li { margin: .2rem 0; }
@page { margin: 14mm; }
@media print {
  body { font-size: 10pt; max-width: none; padding: 0; }
  nav, .noprint { display: none; }
  h2 { break-after: avoid; } figure, tr { break-inside: avoid; }
  thead { display: table-header-group; } thead th { position: static; }
  .wide, .tall { overflow: visible; max-height: none; }
  table { font-size: 8pt; } ul.msgs { min-width: 0; }
  a { color: inherit; text-decoration: none; }
  table.sortable th::after { content: ""; }
}
"""

SCRIPT = """
(function () {
  "use strict";
  function key(td) {
    if (td.hasAttribute("data-v")) {
      var v = td.getAttribute("data-v");
      return v === "" ? null : Number(v);
    }
    return td.textContent.trim().toLowerCase();
  }
  function compare(a, b) {
    if (a === null && b === null) { return 0; }
    if (a === null) { return 1; }
    if (b === null) { return -1; }
    if (typeof a === "number" && typeof b === "number") { return a - b; }
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }
  function sortBy(table, th, col) {
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) { heads[i].removeAttribute("aria-sort"); }
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, index) {
      return {row: row, key: key(row.cells[col]), index: index};
    });
    rows.sort(function (a, b) {
      var c = (a.key === null || b.key === null) ? compare(a.key, b.key)
        : (asc ? compare(a.key, b.key) : compare(b.key, a.key));
      return c !== 0 ? c : a.index - b.index;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r.row); });
    body.appendChild(frag);
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.tabIndex = 0;
      th.title = "sort by this column";
      th.addEventListener("click", function () { sortBy(table, th, col); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th, col); }
      });
    });
  });
}());
"""


def _link(target: Path | None, folder: Path, text: str) -> str:
    if target is None:
        return esc(text)
    return f'<a href="{esc(quote(_rel(target, folder)))}">{esc(text)}</a>'


def _messages(it: Item) -> str:
    if not it.messages:
        return '<span class="hint">-</span>' if not it.unread else \
            f'<span class="hint">{it.unread} without a notebook</span>'
    shown = it.messages[: analysis.TOP_MESSAGES]
    lis = [f'<li><span class="num">{g.count}</span> &times; <code>{esc(g.pattern)}</code>'
           + (f'<br><span class="example">e.g. <code>{esc(g.example)}</code></span>'
              if g.example != g.pattern else "") + "</li>" for g in shown]
    rest = sum(g.count for g in it.messages[analysis.TOP_MESSAGES:])
    if rest:
        lis.append(f'<li class="hint">{rest} other(s) in report-messages.csv</li>')
    if it.unread:
        lis.append(f'<li class="hint">{it.unread} without a notebook</li>')
    return '<ul class="msgs">' + "".join(lis) + "</ul>"


def _summary(report: Report) -> str:
    stats = report.stats
    rows = [
        ("students", len(report.students)),
        ("modules", len(report.modules)),
        ("submissions graded", sum(s.submitted for s in stats)),
        ("handed in but not gradable", sum(s.not_gradable for s in stats)),
        ("missing", sum(s.missing for s in stats)),
        ("late", sum(s.late for s in stats)),
        ("flagged for review", sum(1 for e in report.entries.values() if e.flagged)),
        ("tests to check the prose of", len(report.prose)),
        ("students falling behind", len(report.behind)),
    ]
    return table("summary", ["", "count"], ([esc(k), num(v)] for k, v in rows), numeric=[1])


def _modules_section(report: Report) -> str:
    head = ["module", "points", "students", "graded", "missing", "not gradable", "full marks",
            "zero", "late", "penalised", "mean", "median", "mean %", "median %"]
    rows = []
    for s in report.stats:
        rows.append([esc(s.name), num(s.max_score, points(s.max_score)), num(s.students),
                     num(s.submitted), num(s.missing), num(s.not_gradable), num(s.full),
                     num(s.zero), num(s.late), num(s.penalised), num(s.mean, points(s.mean)),
                     num(s.median, points(s.median)), num(s.mean_pct, pct(s.mean_pct)),
                     num(s.median_pct, pct(s.median_pct))])
    parts = [wide(table("modules", head, rows, sortable=True, numeric=range(1, len(head)),
                        caption="Scores after late penalties, over the submissions in the "
                        "gradebook; missing: nothing handed in; not gradable: handed in but "
                        "empty, corrupt, invalid or failed to run."))]
    if any(s.submitted and s.max_score > 0 for s in report.stats):
        parts.append(figure("fig-histograms", figures.histograms(report.stats),
                            "Histograms of the scores of each module",
                            "Score distribution per module: submissions per tenth of the "
                            "module's points (the last bar includes full marks).",
                            "report-histogram.csv"))
        parts.append(figure("fig-progress", figures.progress(report.stats),
                            "Mean and median score and share handed in, per module",
                            "The class over the modules: mean and median score as a share "
                            "of the points, and the share of the class with a graded "
                            "submission.", "report-modules.csv"))
    return "\n".join(parts)


def _prose_section(report: Report) -> str:
    if not report.prose:
        return (f'<p id="prose-none">No test is failed by at least {analysis.PROSE_MIN} '
                f"otherwise strong students making up at least "
                f"{100 * analysis.PROSE_SHARE:.0f}% of them.</p>")
    head = ["#", "module", "test cell", "where", "points", "strong failing", "strong",
            "strong failing %", "difficulty %", "discrimi&shy;nation r", "most common failures"]
    rows = []
    for rank, it in enumerate(report.prose, 1):
        share = it.strong_fail_share
        rows.append([num(rank), esc(it.module), f"<code>{esc(it.cell.name)}</code>",
                     f'<span class="loc">{esc(it.location) or "-"}</span>',
                     num(it.cell.max_score, points(it.cell.max_score)), num(it.strong_failing),
                     num(it.strong), num(None if share is None else 100 * share,
                                         pct(None if share is None else 100 * share)),
                     num(100 * it.fail_rate, pct(100 * it.fail_rate)),
                     num(it.r_pb, corr(it.r_pb)), _messages(it)])
    return wide(table("prose", head, rows, numeric=[0, 4, 5, 6, 7, 8, 9],
                      caption="Tests that students who got the rest of the module right "
                      "fail: read the notebook's prose for what the test checks (most "
                      "striking first)."))


def _items_section(report: Report) -> str:
    parts = []
    every = [it for name in report.items for it in report.items[name]]
    if any(it.r_pb is not None for it in every):
        parts.append(figure("fig-items", figures.item_map(every, report.prose),
                            "Scatter plot of difficulty against discrimination per test",
                            "Every graded test cell by difficulty and discrimination; the "
                            "tests to check the prose of are red diamonds, numbered as in "
                            "their list. Tests everyone passes or everyone fails have no "
                            "discrimination and are not drawn.", "report-items.csv"))
    head = ["test cell", "line", "points", "submis&shy;sions", "failing", "difficulty %",
            "discrimi&shy;nation r", "strong failing", "strong", "most common failures"]
    for mod in report.modules:
        its = report.items.get(mod.name, [])
        where = next((it.location.rsplit(":", 1)[0] for it in its if it.location), "")
        parts.append(f'<h3 id="items-{esc(mod.name)}-title">{esc(mod.name)}'
                     + (f' <span class="loc hint">{esc(where)}</span>' if where else "")
                     + "</h3>")
        if not its:
            parts.append('<p class="hint">No graded test cell, or no submission.</p>')
            continue
        rows = [[f"<code>{esc(it.cell.name)}</code>", num(it.line or None),
                 num(it.cell.max_score, points(it.cell.max_score)), num(it.n), num(it.failing),
                 num(100 * it.fail_rate, pct(100 * it.fail_rate)), num(it.r_pb, corr(it.r_pb)),
                 num(it.strong_failing), num(it.strong), _messages(it)] for it in its]
        parts.append(wide(table(f"items-{esc(mod.name)}", head, rows, sortable=True,
                                numeric=[1, 2, 3, 4, 5, 6, 7, 8])))
    return "\n".join(parts)


def _times_section(report: Report) -> str:
    curves = {m.name: [d for *_, d in analysis.days_from_due(m)] for m in report.modules}
    parts = []
    if any(curves.values()):
        parts.append(figure("fig-times", figures.submission_times(curves),
                            "Cumulative submissions against days from the due date",
                            "Submissions against the due date: the share of each module's "
                            "submissions (with a submission time) handed in by each day "
                            "before or after its due date (an extension moves a student's "
                            "due date).", "report-times.csv"))
    else:
        parts.append('<p class="hint">No submission with both a submission time and a due '
                     "date.</p>")
    if any(s.late for s in report.stats):
        parts.append(figure("fig-late", figures.late_work(report.stats),
                            "Late submissions and points taken off per module",
                            "Late work per module: submissions after their due date, those "
                            "with a penalty, and the points the penalties took off.",
                            "report-modules.csv"))
    late = [(s, m, e) for (s, m), e in sorted(report.entries.items())
            if e.score is not None and (e.late or e.penalty)]
    if late:
        parts.append(table("late", ["student", "module", "late by", "penalty", "score"],
                           ([esc(s), esc(m), esc(e.late), num(e.penalty, points(e.penalty)),
                             num(e.score, points(e.score))] for s, m, e in late),
                           sortable=True, numeric=[3, 4]))
    return "\n".join(parts)


def _flagged_section(report: Report, folder: Path) -> str:
    flagged = [(s, m, e) for (s, m), e in sorted(report.entries.items()) if e.flagged]
    if not flagged:
        return '<p id="flagged-none">Nothing flagged for review.</p>'
    return table("flagged", ["student", "module", "why", "feedback page"],
                 ([esc(s), esc(m), "<br>".join(esc(f) for f in e.flagged),
                   _link(e.feedback, folder, "open") if e.feedback else "-"]
                  for s, m, e in flagged), sortable=True)


def _behind_section(report: Report) -> str:
    if not report.behind:
        return '<p id="behind-none">Nobody.</p>'
    return table("behind", ["student", "average %", "modules missed", "last graded module"],
                 ([esc(b.student), num(b.average_pct, pct(b.average_pct)), num(b.missed),
                   esc(b.last or "-")] for b in report.behind), sortable=True, numeric=[1, 2])


def _students_section(report: Report, folder: Path) -> str:
    head = ["student"] + [esc(m.name) for m in report.modules] + ["total", "%"]
    rows = []
    for student in report.students:
        row: list[Cell] = [esc(student)]
        for mod in report.modules:
            e = report.entries[(student, mod.name)]
            if e.score is None:
                text = f'<span class="status">{esc(e.status)}</span>'
                row.append((text, None))
                continue
            shown = esc(points(e.score))
            if e.feedback is not None:
                shown = _link(e.feedback, folder, points(e.score))
            mark = ' <span class="flag" title="flagged for review">!</span>' if e.flagged else ""
            late = ' <span class="status" title="late">late</span>' if e.late else ""
            row.append((shown + mark + late, e.score))
        total, top = _totals(report, student)
        row += [num(total, points(total)),
                num(100 * total / top if top else None, pct(100 * total / top if top else None))]
        rows.append(row)
    numeric = list(range(1, len(head)))
    return ('<div class="wide tall">' + table(
        "students", head, rows, sortable=True, numeric=numeric,
        caption="Scores after late penalties (linked to the feedback page); a status where "
        "nothing was graded; ! flagged for review. Click a column to sort.") + "</div>")


def _method(report: Report) -> str:
    a = analysis
    return f"""
<p>Scores are read from the gradebook ({esc(report.source.shown_url)}): a cell's score is
the manual score where there is one, else the automatic score, plus extra credit; a
submission's score is the sum over its cells, less the late penalty, never below zero (as in
<code>grades.csv</code>). Statuses, reasons and flags come from <code>grades.csv</code>.</p>
<ul>
<li><b>Difficulty</b>: the share of a module's submissions that fail the test (a test is
passed when its score, without extra credit, reaches its points).</li>
<li><b>Discrimination</b>: the point-biserial correlation between passing the test (1 or 0)
and the rest of the module's score R (the score before the late penalty, less this test's
score): <code>r = (M1 &minus; M0) / s &middot; &radic;(p&middot;q)</code>, where M1 and M0 are
the mean of R over the submissions that pass and that fail, s the standard deviation of R
over all of them (divided by n), p the share passing and q = 1 &minus; p. Near 1: the test
separates strong from weak work; near 0 or below: passing it has little to do with the rest.
Undefined (n/a) when everyone passes, everyone fails, or R is the same for all.</li>
<li><b>Check the prose</b>: a student is strong for a test when R is at least
{100 * a.STRONG_SHARE:.0f}% of the rest of the module's points. A test is listed when at
least {a.PROSE_MIN} strong students, and at least {100 * a.PROSE_SHARE:.0f}% of them, fail
it, the largest share first.</li>
<li><b>Failure messages</b>: the first error of the test cell in the autograded notebook
(<code>ename: evalue</code>), grouped by pattern: numbers are replaced by <code>#</code>
(a run of numbers, as in an array or a shape, by one), so that <code>expected 3, got 4</code>
and <code>expected 3, got 5</code> count together.</li>
<li><b>Falling behind</b>: over the modules with a submission so far, an average below
{100 * a.BEHIND_SHARE:.0f}% of the points (missing work counts zero), or no graded
submission in at least {a.BEHIND_MISSED} of them.</li>
<li><b>Late</b>: handed in after the due date (with the student's extension, if any), as
nbgrader counts it; the penalty follows course.toml [late].</li>
</ul>
<p>The numbers behind the page: {", ".join(f'<a href="{n}">{n}</a>' for n in CSV_FILES)}.</p>
"""


CSV_FILES = ("report-modules.csv", "report-histogram.csv", "report-items.csv",
             "report-messages.csv", "report-times.csv", "report-flagged.csv",
             "report-students.csv", "report-behind.csv")


def render(report: Report, folder: Path) -> str:
    """The page's HTML."""
    title = f"Class report: {report.course_id}" if report.course_id else "Class report"
    where = (f" and the grading root {esc(report.source.root)}"
             if report.source.root is not None else "")
    sections = [
        ("modules", "Modules", _modules_section(report)),
        ("check-the-prose", "Check the prose", _prose_section(report)),
        ("items", "Item analysis: every graded test", _items_section(report)),
        ("times", "Submission times and late work", _times_section(report)),
        ("flagged", "Flagged for review", _flagged_section(report, folder)),
        ("behind", "Students falling behind", _behind_section(report)),
        ("students", "Students by module", _students_section(report, folder)),
        ("method", "How the numbers are made", _method(report)),
    ]
    notes = ""
    if report.notes:
        notes = ('<h2 id="notes">What is missing</h2><ul class="notes">'
                 + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>")
    nav = "<nav><ol>" + "".join(f'<li><a href="#{sid}">{esc(t)}</a></li>'
                                for sid, t, _ in sections) + "</ol></nav>"
    body = "\n".join(f'<section><h2 id="{sid}">{esc(t)}</h2>\n{content}\n</section>'
                     for sid, t, content in sections)
    stamp = report.generated.strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{esc(title)}</h1>
<p class="meta">Made {stamp} by <code>course report</code> from the gradebook
{esc(report.source.shown_url)}{where}.</p>
{_summary(report)}
{notes}
{nav}
{body}
<script>{SCRIPT}</script>
</body></html>
"""


def write(report: Report, folder: Path) -> Path:
    """Write the page and its CSV files into ``folder``; the page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    _csv_files(report, folder)
    page = folder / PAGE
    tmp = page.with_name(PAGE + ".tmp")
    tmp.write_text(render(report, folder), encoding="utf-8")
    os.replace(tmp, page)
    return page
