"""A feedback page's cost is bounded by the page, not only by the cell: a notebook of many
cells, each under the per-cell caps, is rendered quickly and into a page of bounded size."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from coursekit.course import Course
from coursekit.grading.records import feedback

REPO = Path(__file__).resolve().parents[2]


def _page(cells: list[nbformat.NotebookNode]) -> str:
    module = next(m for m in Course(REPO).modules() if m.folder == "02_activations")
    source = json.loads(module.source_notebook.read_text(encoding="utf-8"))
    submitted = nbformat.v4.new_notebook(cells=cells)
    return feedback.render_page(module, "s1", submitted, source, {"verdicts": {}},
                                feedback.Scores(max_score=8.0), "x")


def _table(cols: int, rows: int) -> str:
    head = "|" + "|".join(f"c{i}" for i in range(cols)) + "|\n"
    rule = "|" + "|".join("--" for _ in range(cols)) + "|\n"
    return head + rule + ("|" + "|".join("xx" for _ in range(cols)) + "|\n") * rows


def test_markdown_is_rendered_up_to_a_budget_per_page() -> None:
    table = _table(24, 600)  # ~45,000 characters: under the per-cell cap
    assert len(table) < feedback.MAX_CELL_SOURCE
    many = 1 + feedback.MAX_PAGE_MARKDOWN // len(table)  # one more than the budget renders
    page = _page([nbformat.v4.new_markdown_cell(table) for _ in range(many + 3)])
    # the cells within the budget become HTML tables, the rest plain text
    assert page.count('<div class="md"><table>') == many - 1
    assert page.count('<pre class="md">') == 4


def test_the_page_shows_a_bounded_amount_of_the_notebooks_text() -> None:
    code = "x = 1  # " + "y" * 40_000
    n = 2 * feedback.MAX_PAGE_SOURCE // len(code)  # twice what a page shows
    page = _page([nbformat.v4.new_code_cell(code) for _ in range(n)])
    shown = page.count('your code</div><pre class="src">')
    # the cells whose text fits in the budget, plus the one that crosses it
    assert shown == -(-feedback.MAX_PAGE_SOURCE // len(code))
    assert page.count("not shown: the page shows at most") == n - shown
    assert len(page) < 1.2 * feedback.MAX_PAGE_SOURCE
