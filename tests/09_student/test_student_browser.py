"""The student's experience end to end, in headless Chromium on JupyterLab set up as Binder
sets it up from the published student repository.

The repository is released through the target module, ``08_training`` once module 08
exists (``STUDENT_TEST_MODULE=01_tensor`` picks another); its notebook is the one driven,
and with 08 released the XOR milestone runs on the student's exported modules.
Screenshots are written to ``tests/09_student/artifacts/<test name>/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import studentlab


def _release(module: str) -> str:
    return studentlab.release_notebook(module)


def _first_difference(a: str, b: str) -> int:
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))


def _cells(lab: studentlab.Lab, path: str) -> list[dict]:
    return lab.server.notebook(path)["cells"]


def test_untouched_release_notebook_fails_validation(lab: studentlab.Lab,
                                                     target_module: str) -> None:
    """Validate on the notebook as released reports failing tests (nothing is solved)."""
    path = _release(target_module).replace(".ipynb", "_untouched.ipynb")
    lab.open(path, cells=len(_cells(lab, path)))
    lab.screenshot("01-opened")
    verdict, text = lab.validate("02-validate-untouched")
    assert verdict == "failed", f"Validate on the untouched {path} said {verdict!r}:\n{text[:1500]}"
    assert "NotImplementedError" in text, f"the failures should be the stubs':\n{text[:1500]}"


def test_solved_notebook_runs_clean_and_validates(lab: studentlab.Lab, target_module: str) -> None:
    """Type the reference solutions, run all cells (no errors), Validate says success."""
    path = _release(target_module)
    module_name = target_module[3:]
    # the reference solutions are the instructor's: read from the course, not the student repo
    solutions = studentlab.solution_sources(
        studentlab.REPO / "source_notebooks" / target_module / f"{module_name}.ipynb")
    released = _cells(lab, path)
    lab.open(path, cells=len(released))
    lab.screenshot("01-opened")

    typed = []
    for index, cell in enumerate(released):
        if studentlab.is_solution(cell):
            gid = studentlab.grade_id(cell)
            assert gid in solutions, f"{path}: solution cell {gid} is not in the source notebook"
            lab.set_cell_text(index, solutions[gid])
            typed.append(gid)
    assert typed, f"{path} has no solution cells to fill in"
    lab.save()
    saved = {studentlab.grade_id(c): c["source"] for c in _cells(lab, path)}
    for gid in typed:
        assert saved[gid] == solutions[gid], (
            f"cell {gid}: the text typed in the browser is not the reference solution "
            f"(first difference at character {_first_difference(saved[gid], solutions[gid])})")
    lab.screenshot("02-solutions-typed")

    lab.run_all()
    lab.save()
    lab.screenshot("03-ran-all")
    nb = lab.server.notebook(path)
    problems = studentlab.problem_outputs(nb)
    assert not problems, "errors or stderr after Run All Cells:\n" + "\n".join(problems)
    assert lab.error_outputs_shown() == 0, "the page shows error outputs after Run All Cells"
    not_run = [i for i, c in enumerate(nb["cells"])
               if c["cell_type"] == "code" and c.get("execution_count") is None]
    assert not not_run, f"code cells that did not run: {not_run}"
    tests_run = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    assert tests_run, f"{path} has no visible test cells"

    # the export cell exported the notebook as saved into the student's own package
    last = studentlab.printed_text({"cells": [c for c in nb["cells"]
                                              if studentlab.grade_id(c) == f"{module_name}_mine"]})
    assert f"{target_module[:2]} ({module_name}): exported to mine/{module_name}.py" in last, last
    assert (lab.server.root / "mine" / f"{module_name}.py").is_file()

    verdict, text = lab.validate("04-validate-solved")
    assert verdict == "success", f"Validate on the solved notebook said {verdict!r}:\n{text[:2000]}"
    assert "passes all the tests" in text


def _listing(lab: studentlab.Lab) -> list[str]:
    """Names the file browser shows for the folder it is in."""
    lab.page.locator(".jp-DirListing-item").first.wait_for()
    return sorted(lab.page.locator(".jp-DirListing-item .jp-DirListing-itemText")
                  .all_inner_texts())


def test_file_browser_shows_the_student_repository_only(lab: studentlab.Lab,
                                                        target_module: str) -> None:
    """No modules/, no source notebooks, no grader configuration: the files of the student
    repository, and in release/ the notebooks of the modules released so far."""
    root = lab.server.root
    lab.page.goto(f"{lab.server.base}/lab?reset&token={lab.server.token}")
    shown = _listing(lab)
    lab.screenshot("01-repository-root")
    on_disk = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    assert shown == on_disk, f"the file browser shows {shown}, the repository holds {on_disk}"
    for secret in ("modules", "source_notebooks", "grader_config.py", "examples"):
        assert secret not in shown, f"a student sees {secret}"
    assert {"release", "tinytorch", "binder", "README.md"} <= set(shown)
    lab.page.goto(lab.server.url("release"))
    released = _listing(lab)
    lab.screenshot("02-release-folder")
    wanted = sorted(p.name for p in (studentlab.REPO / "modules").glob("[0-9][0-9]_*")
                    if p.name <= target_module and (p / f"{p.name[3:]}.py").is_file())
    assert released == wanted, f"release/ shows {released}, expected {wanted}"


def test_importing_the_module_in_hand_fails_clearly(lab: studentlab.Lab,
                                                    target_module: str) -> None:
    """In a notebook next to the assignment: the earlier modules import from the repository's
    package; the module in hand does not, and the error says it is the student's to write."""
    name = target_module[3:]
    folder = f"release/{target_module}"
    path = f"{folder}/scratch.ipynb"
    empty = {"cells": [{"cell_type": "code", "execution_count": None, "id": "scratch",
                        "metadata": {}, "outputs": [], "source": ""}],
             "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)",
                                         "language": "python", "name": "python3"}},
             "nbformat": 4, "nbformat_minor": 5}
    lab.server.api("PUT", f"/api/contents/{path}",
                   {"type": "notebook", "format": "json", "content": empty})
    try:
        lab.open(path, cells=1)
        lab.set_cell_text(0, "import tinytorch.core.tensor as earlier\n"
                             "print(earlier.__file__)\n"
                             f"import tinytorch.core.{name}")
        lab.run_all()
        lab.save()
        lab.screenshot("01-import-module-in-hand")
        outputs = lab.server.notebook(path)["cells"][0]["outputs"]
    finally:
        lab.server.api("DELETE", f"/api/contents/{path}")
    printed = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert printed.strip().startswith(str(lab.server.root / "tinytorch")), (
        f"tinytorch.core.tensor came from {printed.strip()!r}, not the student repository")
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert errors, f"import tinytorch.core.{name} did not fail: {outputs}"
    assert errors[0]["ename"] == "ModuleNotFoundError", errors[0]["ename"]
    message = errors[0]["evalue"]
    assert f"{folder}/{name}.ipynb" in message and "you write yourself" in message, message


def test_binder_environment_is_exactly_the_pins(binder_lab: studentlab.LabServer) -> None:
    """What binder/requirements.txt pins is what the fresh environment holds, nothing more:
    the pins install, and they are the whole environment the browser test ran in."""
    pins = studentlab.pinned(binder_lab.root)
    have = studentlab.installed(binder_lab.venv)
    for tool in ("pip", "setuptools", "wheel"):  # the venv's own installers
        have.pop(tool, None)
    assert have == pins, (
        f"not pinned: {sorted(set(have) - set(pins))}; "
        f"pinned, not installed: {sorted(set(pins) - set(have))}; "
        f"other versions: {sorted(k for k in set(have) & set(pins) if have[k] != pins[k])}")


def test_student_sees_no_instructor_tools(lab: studentlab.Lab) -> None:
    """Nbgrader menu: the assignment list only; the formgrader is not served."""
    lab.page.goto(lab.server.url("release"))
    lab.page.locator(".jp-DirListing-item").first.wait_for()
    items = lab.menu_items("Nbgrader")
    assert items == ["Assignment List"], f"Nbgrader menu of a student: {items}"
    status = _status(lab.server, "/formgrader")
    assert status == 404, f"/formgrader answered {status}; students must not have it"
    lab.screenshot("01-release-folder")


def _status(server: studentlab.LabServer, path: str) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(server.base + path,
                                     headers={"Authorization": f"token {server.token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


XOR = "milestones/02_xor_1969/xor.ipynb"


def test_xor_milestone_runs_on_the_students_modules(lab: studentlab.Lab, target_module: str,
                                                    artifacts: Path,
                                                    tmp_path: Path) -> None:
    """Modules 01-08 completed (the reference solutions standing in for the student's work)
    and exported with the student environment's `python -m tinytorch.mine`; the XOR
    milestone, opened from the repository and run in JupyterLab, says at the top that every
    module is the student's, holds its claims (one layer at most 3 of 4 points, a hidden
    layer all 4) and draws its plot, without an error."""
    if target_module != "08_training":
        pytest.skip("the milestones are published with module 08 (STUDENT_TEST_MODULE)")
    server = lab.server
    studentlab.export_modules(server.venv, server.root, server.home, artifacts / "mine.log",
                              tmp_path)
    folders = sorted(p.name for p in (server.root / "release").iterdir() if p.is_dir())
    assert sorted(f"{p.stem}" for p in (server.root / "mine").glob("*.py")) == \
        sorted(f[3:] for f in folders)
    cells = server.notebook(XOR)["cells"]
    lab.open(XOR, cells=len(cells))
    lab.screenshot("01-opened")
    lab.run_all(timeout=300)
    lab.save()
    lab.screenshot("02-ran-all")
    nb = server.notebook(XOR)
    problems = studentlab.problem_outputs(nb)
    assert not problems, "errors or stderr in the milestone:\n" + "\n".join(problems)
    assert lab.error_outputs_shown() == 0
    text = studentlab.printed_text(nb)
    for folder in folders:
        assert re.search(rf"^  {folder[:2]} {folder[3:]} +yours +mine/{folder[3:]}\.py",
                         text, re.M), text[:2500]
    result = next(line for line in text.splitlines() if line.startswith("RESULT xor "))
    values = dict(item.split("=", 1) for item in result.split()[2:])
    assert float(values["single_layer_best"]) <= 0.75 and \
        float(values["hidden_layer_accuracy"]) == 1.0, values
    assert values["culprits"] == "none" and values["yours"] == ",".join(f[:2] for f in folders)
    assert any("image/png" in out.get("data", {}) for cell in nb["cells"]
               if cell["cell_type"] == "code" for out in cell.get("outputs", [])), "no plot"
    assert lab.page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output img").count() >= 1
