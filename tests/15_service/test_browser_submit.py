"""Graded in the browser: a student opens JupyterLab (the student image Binder builds) on the
student repository ``course publish`` wrote, writes module 01's solution, and runs the
Submit cell without saving first. The cell saves the notebook, asks for the token once (a
password field: it never reaches the notebook), and shows the score ``course grade`` gives
the same file; the gradebook on PostgreSQL holds it.

Screenshots go to ``tests/09_student/artifacts/<test name>/``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import servicetools as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "09_student"))
import studentlab  # noqa: E402

from coursekit import nbg  # noqa: E402
from coursekit.grading.grade import grade  # noqa: E402
from coursekit.grading.records.database import normalize  # noqa: E402

pytestmark = pytest.mark.slow
MODULE = "01_tensor"
ARTIFACTS = Path(__file__).resolve().parents[1] / "09_student" / "artifacts"


@pytest.fixture(scope="module")
def setup(pg: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    problem = studentlab.browser_problem()
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but the browser test cannot run: {problem}")
        pytest.skip(f"browser test skipped: {problem}")
    work = tmp_path_factory.mktemp("browser")
    port = st.free_port()
    course = st.make_course(work / "course", f"""
[student_repository]
slug = "your-org/tinytorch"
through = "01"

[service]
url = "http://127.0.0.1:{port}"
""")
    db_url = pg.create_database("browser_gradebook")
    grading = work / "grading"
    token = st.issue_tokens(course, grading, db_url, ["ada"])["ada"]
    service = st.ServiceProcess(course, grading, db_url, work / "serve.log", port=port)
    repo = work / "student-repo"
    from coursekit.publishing.publish import publish

    publish(course, repo, MODULE, preview=True, log=lambda line: None)
    home = work / "home"
    home.mkdir()
    log = work / "lab.log"
    with studentlab.locked(studentlab.cache_root() / ".lock"):
        venv = studentlab.binder_venv(log, repo)
    # the repository's package on the kernel's path (as postBuild's editable install puts
    # it; the shared environment's install is left to the student browser test)
    lab = studentlab.LabServer(venv, repo, home, log,
                               env={"HOME": str(home), "PYTHONPATH": str(repo)})
    try:
        service.start()
        lab.start()
        yield {"course": course, "service": service, "token": token, "repo": repo,
               "home": home, "grading": grading, "db_url": db_url, "work": work,
               "lab": lab}
    finally:
        lab.stop()
        service.stop()


@pytest.fixture()
def page(setup: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[studentlab.Lab]:
    from playwright.sync_api import sync_playwright

    shots = ARTIFACTS / request.node.name
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=studentlab.CHROMIUM, headless=True,
                args=studentlab.CHROMIUM_ARGS, viewport={"width": 1400, "height": 900})
            context.set_default_timeout(60_000)
            try:
                yield studentlab.Lab(context.pages[0] if context.pages else context.new_page(),
                                     setup["lab"], shots)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_submit_in_the_browser_gets_what_course_grade_gives(setup: dict[str, Any],
                                                            page: studentlab.Lab) -> None:
    course, lab = setup["course"], page
    path = studentlab.release_notebook(MODULE)
    cells = lab.server.notebook(path)["cells"]
    solutions = studentlab.solution_sources(course.select(["01"])[0].source_notebook)
    lab.open(path, cells=len(cells))
    for index, cell in enumerate(cells):
        if studentlab.is_solution(cell):
            lab.set_cell_text(index, solutions[studentlab.grade_id(cell)])
    lab.screenshot("01-solution-typed")
    submit = len(cells) - 1
    assert studentlab.grade_id(cells[submit]) == "tensor_submit"
    # run the Submit cell alone, without saving first
    target = lab.cell(submit)
    target.scroll_into_view_if_needed()
    target.locator(".jp-InputPrompt").click()
    lab.page.keyboard.press("Control+Enter")
    field = lab.page.locator(".jp-Stdin-input").first
    field.wait_for(timeout=90_000)
    assert field.get_attribute("type") == "password"
    lab.screenshot("02-asks-for-the-token")
    field.fill(setup["token"])
    field.press("Enter")
    shown = lab.page.locator(".jp-NotebookPanel:visible .tinytorch-result")
    shown.wait_for(timeout=180_000)
    shown.scroll_into_view_if_needed()
    lab.screenshot("03-graded")
    text = shown.inner_text()
    # what the service received: the notebook as typed (the cell saved it first)
    (attempt,) = (setup["grading"] / "service" / "attempts" / "ada" / MODULE).iterdir()
    sent = json.loads((attempt / "tensor.ipynb").read_text())
    typed = {studentlab.grade_id(c): "".join(c["source"]) if isinstance(c["source"], list)
             else c["source"] for c in sent["cells"] if studentlab.is_solution(c)}
    assert typed and all(typed[g] == solutions[g] for g in typed)
    # the score course grade gives the same file (another grading root and gradebook)
    (batch,) = grade(course, setup["grading"] / "submissions", out=setup["work"] / "batch",
                     workers=1, feedback=False, log=lambda line: None)
    assert batch.student == "ada" and batch.status == "graded"
    most = st.points(course, MODULE)
    assert batch.score == most  # the reference solution: full marks
    assert f"by ada: {batch.score:g} / {most:g}" in text, text
    with nbg.gradebook(normalize(setup["db_url"]), "tinytorch") as gb:
        assert float(gb.find_submission(MODULE, "ada").score) == batch.score
    # the token: kept in the student's home, readable by them alone, never in the notebook
    kept = setup["home"] / ".tinytorch" / "tokens.json"
    assert setup["token"] in kept.read_text()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    lab.save()
    saved = (setup["repo"] / path).read_text()
    assert setup["token"] not in saved and "tensor_submit" in saved
    assert setup["token"] not in (attempt / "tensor.ipynb").read_text()
    # the page shows no hidden-test code
    whole = lab.page.locator(".jp-NotebookPanel:visible").inner_text()
    leaked = [line for line in st.hidden_lines(course) if line in whole
              and line not in json.dumps(sent)]
    assert not leaked, leaked[:3]
