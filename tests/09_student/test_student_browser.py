"""The student's experience end to end, in headless Chromium on JupyterLab set up as Binder.

The target notebook is ``release/08_training/training.ipynb`` once module 08 exists
(``STUDENT_TEST_MODULE=01_tensor`` picks another). Screenshots are written to
``tests/09_student/artifacts/<test name>/``.
"""

from __future__ import annotations

import re

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
    solutions = studentlab.solution_sources(
        lab.server.root / "source_notebooks" / target_module / f"{module_name}.ipynb")
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

    verdict, text = lab.validate("04-validate-solved")
    assert verdict == "success", f"Validate on the solved notebook said {verdict!r}:\n{text[:2000]}"
    assert "passes all the tests" in text


def test_module_source_opens_as_notebook(lab: studentlab.Lab, target_module: str) -> None:
    """Double-clicking modules/NN_name/name.py opens it as a notebook (Jupytext), not as text."""
    name = f"{target_module[3:]}.py"
    source = (lab.server.root / "modules" / target_module / name).read_text(encoding="utf-8")
    expected_cells = len(re.findall(r"(?m)^# %%", source))
    lab.page.goto(lab.server.url(f"modules/{target_module}"))
    item = lab.page.locator(".jp-DirListing-item", has_text=name).first
    item.wait_for()
    item.dblclick()
    lab.wait_notebook(cells=expected_cells)
    tab = lab.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current").inner_text()
    assert name in tab, f"the active tab is {tab!r}, not {name}"
    assert lab.page.locator(".jp-FileEditor:visible").count() == 0, "opened in the text editor"
    shown = lab.page.locator(".jp-NotebookPanel:visible .jp-Cell").count()
    assert shown == expected_cells, f"{name} shows {shown} cells, the file has {expected_cells}"
    lab.screenshot("01-module-source-as-notebook")


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
