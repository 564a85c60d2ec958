"""Fixtures of the student end-to-end test: a published student repository, its Binder
replayed, JupyterLab, headless Chromium.

Without Chromium (or Playwright) the browser tests are skipped with the reason, except
in CI (``CI=true``), where they fail: CI installs the browser with scripts/install-browser.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import studentlab  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the Chromium to drive; skip (or, in CI, fail) when there is none."""
    problem = studentlab.browser_problem()
    if problem:
        if _in_ci():
            pytest.fail(f"CI=true but the browser test cannot run: {problem}")
        pytest.skip(f"student browser test skipped: {problem}")
    return studentlab.CHROMIUM


@pytest.fixture(scope="session")
def target_module() -> str:
    """The module whose release notebook the test drives (STUDENT_TEST_MODULE to choose)."""
    module = studentlab.default_target()
    if not (studentlab.REPO / "modules" / module / f"{module[3:]}.py").is_file():
        pytest.fail(f"STUDENT_TEST_MODULE={module}: modules/{module}/{module[3:]}.py not found")
    return module


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots and logs: tests/09_student/artifacts/ (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"student test artefacts: {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture(scope="module")
def binder_lab(chromium: str, target_module: str, artifacts: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[studentlab.LabServer]:
    """JupyterLab as Binder builds it from the student repository released through the
    target module: fresh venv + its binder/postBuild, on a loopback port, rooted there.

    The environment is cached by the hash of the binder/ files; a lock keeps two runs on
    one machine from sharing it at once (postBuild re-points its editable install).
    """
    work = tmp_path_factory.mktemp("binder")
    log = artifacts / "binder.log"
    log.write_text("", encoding="utf-8")
    print(f"Binder set-up and JupyterLab log: {log}")
    repo = studentlab.publish_student_repository(work / "student-repo", target_module)
    print(f"student repository published through {target_module}: {repo}")
    blank = repo / studentlab.release_notebook(target_module)
    # the student's own untouched copy, for the Validate-fails test
    shutil.copy2(blank, blank.with_name(f"{blank.stem}_untouched.ipynb"))
    with studentlab.locked(studentlab.cache_root() / ".lock"):
        venv = studentlab.binder_venv(log, repo)
        studentlab.run_postbuild(venv, repo, work / "home", log)
        server = studentlab.LabServer(venv, repo, work / "home", log)
        try:
            server.start()
            print(f"JupyterLab (Binder set-up) at {server.base}, root {repo}")
            yield server
        finally:
            server.stop()


@pytest.fixture()
def lab(binder_lab: studentlab.LabServer, artifacts: Path,
        request: pytest.FixtureRequest) -> Iterator[studentlab.Lab]:
    """A fresh headless Chromium (own profile) on the server; closed whatever happens."""
    from playwright.sync_api import sync_playwright

    shots = artifacts / request.node.name
    shutil.rmtree(shots, ignore_errors=True)  # only this test's screenshots of a last run
    shots.mkdir(parents=True)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    context: Any = None
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=studentlab.CHROMIUM, headless=True,
                args=studentlab.CHROMIUM_ARGS, viewport={"width": 1400, "height": 900})
            context.set_default_timeout(60_000)
            page = context.pages[0] if context.pages else context.new_page()
            driver = studentlab.Lab(page, binder_lab, shots)
            try:
                yield driver
                report = getattr(request.node, "rep_call", None)
                if report is not None and report.failed:
                    with contextlib.suppress(Exception):  # the page may be gone
                        driver.screenshot("failure")
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item (the ``lab`` fixture screenshots failures)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
