"""Feedback pages: what a student gets back, made from the gradebook when it is made.

A page is ``<grading root>/feedback/<student>/<NN_name>/<name>.html``, one self-contained
HTML file (no script, no remote resource). It shows:

* the score as the gradebook has it now (automatic scores, manual scores and extra credit
  from the formgrader, the late penalty after any extension), and when it was submitted;
* the notebook *as the student submitted it*: their own cells with their own outputs
  (text and images only: no HTML or script of theirs runs where the page is opened);
* in place of each cell the author locked, its visible code (hidden tests replaced by one
  line) and, for a test, its name, the points it earned and, if it failed, its failure
  message (capped). Nothing produced while the grader ran the notebook is shown: no output
  of a test, no traceback (it could quote hidden-test code, or carry what the notebook's
  code wrote while a hidden test ran).

When the grader flagged the submission for tampering with the grading (see
:mod:`coursekit.grading.execution.flags` and the seal), failure messages are withheld until
an instructor has looked: a message is text the notebook's code can shape.

Each page records a digest of everything it was made from; :func:`render_stale` remakes the
pages whose gradebook rows, report or submission changed since (``course feedback``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from collections.abc import Callable
from typing import Any

from coursekit import nbg
from coursekit.cells import cell_source, grade_id, hide_hidden, is_locked_code, nbgrader_meta
from coursekit.course import Module
from coursekit.text import clean, number

PLACEHOLDER = "# (hidden tests run here; their code is not shown)"
MAX_MESSAGE = 600
MAX_OUTPUT_TEXT = 20_000  # characters of one output shown
MAX_PAGE_OUTPUTS = 3_000_000  # bytes of the student's own outputs on one page
MAX_CELL_SOURCE = 50_000  # characters of one cell's text shown (markdown as plain text beyond)
MAX_PAGE_MARKDOWN = 300_000  # characters of markdown rendered on one page (plain text beyond)
MAX_PAGE_SOURCE = 2_000_000  # characters of the cells' text on one page (a note beyond)
DIGEST_MARK = '<meta name="coursekit-digest" content="'
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.4rem;margin-bottom:.2rem}.meta{color:#555;margin-top:0}
table.summary{border-collapse:collapse;margin:1rem 0}table.summary td,table.summary th{
border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
.cell{border:1px solid #ddd;border-radius:4px;margin:1rem 0;overflow:hidden}
.cell .label{background:#f4f4f4;padding:.2rem .6rem;font-size:.85rem;color:#444}
.cell pre{margin:0;padding:.6rem;overflow-x:auto;font-size:.85rem}
.src{background:#fbfbfb}.out{border-top:1px dashed #ddd}
.test.pass .label{background:#e6f4ea}.test.fail .label{background:#fdecea}
.verdict{padding:.4rem .6rem;border-top:1px solid #ddd;font-size:.9rem}
.fail .verdict{color:#a50e0e}.pass .verdict{color:#137333}
.md{padding:.2rem .8rem}.note{background:#fff8e1;border:1px solid #f0d98c;padding:.5rem .8rem}
img{max-width:100%}
@media print{.cell{break-inside:avoid}}
"""


@dataclass
class Scores:
    """A submission's scores as the gradebook has them."""

    score: float = 0.0
    max_score: float = 0.0
    penalty: float = 0.0
    submitted: str = ""
    extension: str = ""
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)  # grade_id -> row

    def key(self) -> str:
        return json.dumps([self.score, self.max_score, self.penalty, self.submitted,
                           self.extension, self.cells], sort_keys=True, default=str)


def read_scores(db_url: str, course_id: str, module: Module, student: str) -> Scores | None:
    """The gradebook's rows for one submission; None if it has none."""
    from nbgrader.api import MissingEntry

    nb_name = Path(module.notebook_name).stem
    with nbg.gradebook(db_url, course_id) as gb:
        try:
            sub = gb.find_submission(module.folder, student)
            subnb = gb.find_submission_notebook(nb_name, module.folder, student)
        except MissingEntry:
            return None
        cells: dict[str, dict[str, Any]] = {}
        for g in subnb.grades:
            cells[g.name] = {"score": float(g.score or 0), "max": float(g.max_score or 0),
                             "manual": g.manual_score is not None,
                             "extra": float(g.extra_credit or 0)}
        for c in subnb.comments:
            text = c.manual_comment or ""
            if text:
                cells.setdefault(c.name, {})["comment"] = str(text)
        return Scores(float(sub.score or 0), float(sub.max_score or 0),
                      float(sub.late_submission_penalty or 0),
                      sub.timestamp.isoformat(sep=" ", timespec="minutes")
                      if sub.timestamp else "",
                      str(sub.extension or ""), cells)


def digest(report: bytes, submitted: bytes, scores: Scores, source: bytes) -> str:
    """What a page is made from, in one string."""
    h = hashlib.sha256()
    for part in (report, submitted, scores.key().encode(), source):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def page_digest(path: Path) -> str:
    """The digest a page was made with (empty if none or no page)."""
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4000]
    except OSError:
        return ""
    at = head.find(DIGEST_MARK)
    if at < 0:
        return ""
    return head[at + len(DIGEST_MARK):].split('"', 1)[0]


# -- rendering ----------------------------------------------------------------------------

def _code(text: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(text, PythonLexer(), HtmlFormatter(nowrap=True))


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def _cut(text: str) -> str:
    """At most :data:`MAX_CELL_SOURCE` characters of a cell's text."""
    if len(text) <= MAX_CELL_SOURCE:
        return text
    return text[:MAX_CELL_SOURCE] + f"\n[... {len(text) - MAX_CELL_SOURCE} more characters]"


def _within(text: str, budget: list[int]) -> str | None:
    """``text`` cut to one cell's share (:func:`_cut`), counted against the page's
    ``budget`` of cell text; None once the page has shown all it shows."""
    if budget[0] <= 0:
        return None
    text = _cut(text)
    budget[0] -= len(text)
    return text


def _not_shown(text: str) -> str:
    return (f'<p class="note">[a cell of {len(text):,} characters not shown: the page shows '
            f"at most {MAX_PAGE_SOURCE:,} characters of the notebook's text]</p>")


def _output(output: dict[str, Any], budget: list[int]) -> str:
    """One of the student's own outputs: text or an image (no HTML or script of theirs)."""
    kind = output.get("output_type")
    if budget[0] <= 0:
        return ""
    if kind == "stream":
        text = "".join(output.get("text", "")) if isinstance(output.get("text"), list) \
            else str(output.get("text", ""))
    elif kind == "error":
        text = f"{output.get('ename', '')}: {output.get('evalue', '')}"
    else:
        data = output.get("data") or {}
        for mime in ("image/png", "image/jpeg"):
            value = data.get(mime)
            if isinstance(value, list):
                value = "".join(value)
            if isinstance(value, str):
                raw = value.replace("\n", "")
                try:
                    base64.b64decode(raw, validate=True)
                except ValueError:
                    continue
                if len(raw) > budget[0]:
                    return '<pre class="out">[image too large to show]</pre>'
                budget[0] -= len(raw)
                return f'<div class="out"><img alt="output" src="data:{mime};base64,{raw}"></div>'
        plain = data.get("text/plain", "")
        text = "".join(plain) if isinstance(plain, list) else str(plain)
    text = text[:MAX_OUTPUT_TEXT]
    budget[0] -= len(text)
    if not text.strip():
        return ""
    return f'<pre class="out">{html.escape(clean(text, newlines=True))}</pre>'


def render_page(module: Module, student: str, submitted_nb: dict[str, Any],
                source_nb: dict[str, Any], report: dict[str, Any], scores: Scores,
                digest_text: str) -> str:
    """The HTML of one feedback page."""
    locked = {grade_id(c): c for c in source_nb.get("cells", [])
              if grade_id(c) and is_locked_code(c)}
    verdicts = report.get("verdicts", {})
    hide_messages = bool(report.get("withhold"))
    total = scores.score - scores.penalty
    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"{DIGEST_MARK}{digest_text}\">",
             f"<title>{html.escape(module.folder)}: feedback for {html.escape(student)}</title>",
             f"<style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(module.folder)} &mdash; feedback</h1>",
             f'<p class="meta">{html.escape(student)}'
             + (f" &middot; submitted {html.escape(scores.submitted)}" if scores.submitted
                else "")
             + (f" &middot; extension to {html.escape(scores.extension)}"
                if scores.extension else "")
             + f" &middot; page made {datetime.now().strftime('%Y-%m-%d %H:%M')}</p>",
             '<table class="summary"><tr><th>Score</th><td>'
             f"{number(total)} / {number(scores.max_score)}</td></tr>"]
    if scores.penalty:
        parts.append(f"<tr><th>Late penalty</th><td>&minus;{number(scores.penalty)} "
                     f"(before it: {number(scores.score)})</td></tr>")
    parts.append("</table>")
    if hide_messages:
        parts.append('<p class="note">The failure messages of the tests are held back while '
                     "an instructor looks at this submission; the scores below stand.</p>")
    budget = [MAX_PAGE_OUTPUTS]
    source_budget, markdown_budget = [MAX_PAGE_SOURCE], [MAX_PAGE_MARKDOWN]
    seen: set[str] = set()
    for cell in submitted_nb.get("cells", []):
        gid = grade_id(cell)
        if gid in locked and gid not in seen:
            seen.add(gid)
            parts.append(_locked_cell(locked[gid], gid, verdicts.get(gid), scores,
                                      hide_messages))
        elif gid in locked:
            continue
        elif cell.get("cell_type") == "markdown":
            text = cell_source(cell)
            shown = _within(text, source_budget)
            if shown is None:
                parts.append(_not_shown(text))
            elif len(text) <= min(MAX_CELL_SOURCE, markdown_budget[0]):
                markdown_budget[0] -= len(text)
                parts.append(f'<div class="md">{_markdown(text)}</div>')
            else:  # rendering markdown costs far more than showing it: a budget per page
                parts.append(f'<pre class="md">{html.escape(shown)}</pre>')
        elif cell.get("cell_type") == "code":
            label = "your code" + (f" ({html.escape(gid)})" if gid else "")
            row = scores.cells.get(gid or "", {})
            if row.get("comment"):
                label += f" &middot; comment: {html.escape(clean(row['comment']))}"
            outs = "".join(_output(o, budget) for o in cell.get("outputs", []) or [])
            shown = _within(cell_source(cell), source_budget)
            src = (f'<pre class="src">{_code(shown)}</pre>' if shown is not None
                   else _not_shown(cell_source(cell)))
            parts.append(f'<div class="cell"><div class="label">{label}</div>{src}{outs}</div>')
    for gid, cell in locked.items():  # a test cell the submission did not have
        if gid not in seen and nbgrader_meta(cell).get("grade"):
            parts.append(_locked_cell(cell, gid, verdicts.get(gid), scores, hide_messages))
    parts.append("</body></html>\n")
    return "".join(parts)


def _locked_cell(cell: dict[str, Any], gid: str, verdict: dict[str, Any] | None,
                 scores: Scores, hide_messages: bool) -> str:
    shown, _ = hide_hidden(cell_source(cell), PLACEHOLDER)
    src = f'<pre class="src">{_code(shown)}</pre>'
    if not nbgrader_meta(cell).get("grade"):
        return f'<div class="cell"><div class="label">given code</div>{src}</div>'
    row = scores.cells.get(gid, {})
    earned, most = row.get("score", 0.0), row.get("max", 0.0)
    passed = bool(verdict and verdict.get("status") == "passed")
    state = "pass" if earned >= most > 0 or (passed and not row) else "fail"
    text = (f"passed: {number(earned)} / {number(most)}" if state == "pass"
            else f"failed: {number(earned)} / {number(most)}")
    if row.get("manual"):
        text += " (graded by hand)"
    if row.get("extra"):
        text += f", extra credit {number(row['extra'])}"
    if state == "fail" and not passed and verdict and not hide_messages:
        message = str(verdict.get("message", ""))
        ename = str(verdict.get("ename", "")) or "Error"
        shown_message = clean(f"{ename}: {message}" if message else ename)
        if len(shown_message) > MAX_MESSAGE:
            shown_message = shown_message[:MAX_MESSAGE] + "..."
        text += f"<br>{html.escape(shown_message)}"
    if row.get("comment"):
        text += f"<br>comment: {html.escape(clean(row['comment']))}"
    return (f'<div class="cell test {state}"><div class="label">test {html.escape(gid)}</div>'
            f'{src}<div class="verdict">{text}</div></div>')


# -- pages of a grading root ------------------------------------------------------------------

def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def inputs(root: Path, module: Module, student: str) -> tuple[Path, Path, Path]:
    """Where a submission's page, report and submitted notebook are in a grading root."""
    html_name = Path(module.notebook_name).with_suffix(".html").name
    return (root / "feedback" / student / module.folder / html_name,
            root / "reports" / student / module.folder / "report.json",
            root / "submitted" / student / module.folder / module.notebook_name)


def render(root: Path, db_url: str, course_id: str, module: Module, student: str,
           force: bool = False) -> tuple[Path | None, bool]:
    """Make (or remake) one submission's page from the gradebook now; ``(path, written)``.
    No page (None) for a submission the gradebook does not have or that was not run. With
    ``force`` false, a page whose inputs did not change is kept."""
    page, report_path, submitted_path = inputs(root, module, student)
    report_bytes, submitted_bytes = _read(report_path), _read(submitted_path)
    scores = read_scores(db_url, course_id, module, student)
    if scores is None or not report_bytes or not submitted_bytes:
        if page.exists():
            page.unlink()
        return None, False
    source_bytes = module.source_notebook.read_bytes()
    want = digest(report_bytes, submitted_bytes, scores, source_bytes)
    if not force and page.is_file() and page_digest(page) == want:
        return page, False
    try:
        report = json.loads(report_bytes)
        submitted_nb = json.loads(submitted_bytes)
    except ValueError:
        return None, False
    text = render_page(module, student, submitted_nb, json.loads(source_bytes), report,
                       scores, want)
    page.parent.mkdir(parents=True, exist_ok=True)
    tmp = page.with_suffix(".html.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(page)
    return page, True


def render_stale(root: Path, db_url: str, course_id: str, modules: list[Module],
                 log: Callable[[str], None] = print) -> tuple[int, int]:
    """Remake every page of the grading root ``root`` whose inputs changed since it was made
    (a manual grade, extra credit, an extension, a regrade) or that is missing; ``(remade,
    up to date)``."""
    from nbgrader.api import MissingEntry

    wanted: list[tuple[Module, str]] = []
    with nbg.gradebook(db_url, course_id) as gb:
        for module in modules:
            try:
                subs = gb.assignment_submissions(module.folder)
            except MissingEntry:
                continue
            wanted += [(module, sub.student_id) for sub in subs]
    remade = kept = 0
    for module, student in wanted:
        page, written = render(root, db_url, course_id, module, student)
        if written:
            remade += 1
        elif page is not None:
            kept += 1
    if remade:
        log(f"feedback: remade {remade} page(s) whose scores, report or submission changed "
            f"since they were made; {kept} up to date")
    return remade, kept
