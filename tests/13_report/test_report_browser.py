"""``report.html`` in a real browser (headless Chromium driven by Playwright, as the student
test does), opened from disk: no console errors, every figure loads, the tables sort, the
page prints. Without Chromium or Playwright the test is skipped, except in CI."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coursekit.course import Course
from coursekit.report import write_report

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "09_student"))
import studentlab  # noqa: E402
import synthetic  # noqa: E402

pytestmark = pytest.mark.slow
REPO = HERE.parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("class") / "grading"
    spec = synthetic.Spec(students=150, modules=synthetic.standard_modules(4, 8), seed=3,
                          flagged=0.03, planted={"layers_test_02": 0.9})
    synthetic.make_class(root, spec)
    return write_report(Course(REPO), grading=root, log=lambda s: None)


@pytest.fixture(scope="module")
def page(report: Path) -> Iterator[Any]:
    problem = studentlab.browser_problem()
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but the browser test cannot run: {problem}")
        pytest.skip(f"report browser test skipped: {problem}")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=studentlab.CHROMIUM, headless=True,
                args=studentlab.CHROMIUM_ARGS, viewport={"width": 1300, "height": 900},
                offline=True)
            try:
                tab = context.pages[0] if context.pages else context.new_page()
                tab.problems = []  # console errors, page errors, failed requests
                tab.on("console", lambda m: tab.problems.append(f"console {m.type}: {m.text}")
                       if m.type in ("error", "warning") else None)
                tab.on("pageerror", lambda e: tab.problems.append(f"page error: {e}"))
                tab.on("requestfailed", lambda r: tab.problems.append(f"failed: {r.url}"))
                tab.goto(report.as_uri(), wait_until="load")
                yield tab
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_opens_from_disk_without_errors(page: Any) -> None:
    page.wait_for_load_state("load")
    assert page.problems == []
    assert page.title() == "Class report: tinytorch"


def test_every_figure_loads(page: Any) -> None:
    figures = page.eval_on_selector_all(
        "figure img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight,"
        " i.getBoundingClientRect().width, i.alt])")
    assert len(figures) == 5  # histograms, progress, item map, submission times, late work
    for complete, width, height, shown, alt in figures:
        assert complete and width > 300 and height > 200 and shown > 100 and alt
    assert page.eval_on_selector_all("figure", "fs => fs.map(f => f.id)") == [
        "fig-histograms", "fig-progress", "fig-items", "fig-times", "fig-late"]


def _column(page: Any, table: str, col: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr", f"rows => rows.map(r => r.cells[{col}].getAttribute('data-v') "
        f"?? r.cells[{col}].textContent.trim())")


def test_the_students_table_sorts(page: Any) -> None:
    heads = page.eval_on_selector_all("#students thead th", "hs => hs.map(h => h.textContent)")
    total = heads.index("total")
    page.click(f"#students thead th:nth-child({total + 1})")
    values = [float(v) for v in _column(page, "students", total)]
    assert values == sorted(values) and values[0] < values[-1]
    assert page.get_attribute(f"#students thead th:nth-child({total + 1})",
                              "aria-sort") == "ascending"
    page.click(f"#students thead th:nth-child({total + 1})")
    values = [float(v) for v in _column(page, "students", total)]
    assert values == sorted(values, reverse=True)
    # a module column: students without a graded submission stay last either way
    page.click("#students thead th:nth-child(2)")
    keys = _column(page, "students", 1)
    present = [float(k) for k in keys if k != ""]
    assert present == sorted(present) and keys[len(present):] == [""] * (len(keys) - len(present))
    assert 0 < len(present) < len(keys)
    page.click("#students thead th:nth-child(1)")  # by name
    names = _column(page, "students", 0)
    assert names == sorted(names)
    page.keyboard.press("Tab")  # the headers sort from the keyboard too
    page.focus("#students thead th:nth-child(1)")
    page.keyboard.press("Enter")
    assert _column(page, "students", 0) == sorted(names, reverse=True)
    assert page.problems == []


def test_an_item_table_sorts_by_difficulty(page: Any) -> None:
    table = "items-03_layers"
    heads = page.eval_on_selector_all(f"#{table} thead th", "hs => hs.map(h => h.textContent)")
    col = next(i for i, h in enumerate(heads) if h.startswith("difficulty"))
    page.click(f"#{table} thead th:nth-child({col + 1})")
    values = [float(v) for v in _column(page, table, col)]
    assert values == sorted(values)


def test_the_page_prints(page: Any, report: Path) -> None:
    page.emulate_media(media="print")
    assert page.eval_on_selector("nav", "n => getComputedStyle(n).display") == "none"
    pdf = page.pdf(format="A4", print_background=False)
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
    page.emulate_media(media="screen")
    assert page.problems == []
