"""Your framework, your milestones: a student repository as ``course publish --through 08``
writes it, the reference solutions standing in for a student's completed notebooks.

* ``python -m tinytorch.mine`` runs each completed notebook and exports its ``#| export``
  cells into ``mine/``: the same code ``course build`` exports into the reference package,
  and the package made of them passes the module tests (tests/01..08);
* each milestone notebook, run in the published repository on those modules, reaches the
  numbers the milestone reaches on the reference code (run here as a script);
* a completed notebook with a planted bug (a Linear whose bias never gets a gradient:
  its visible tests pass) is exported, and the milestone names module 03; a module whose
  code raises is named with the file and line;
* a notebook that is not complete, does not run, or fails a visible test is refused with
  the reason, and nothing in ``mine/`` changes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from coursekit.authoring.milestones import milestones, needs
from coursekit.course import Course
from coursekit.publishing.publish import publish

ROOT = Path(__file__).resolve().parents[2]
COURSE = Course(ROOT)
MODULES = COURSE.modules()
NOT_COMPARED = {"seconds", "yours", "culprits"}

pytestmark = pytest.mark.slow


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def completed(release: Path, source: Path) -> dict[str, Any]:
    """The release notebook with every solution cell written in, as a student hands it in:
    the reference solution of the source notebook, without nbgrader's region markers."""
    solutions = {}
    for cell in json.loads(source.read_text(encoding="utf-8"))["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            lines = [line for line in _source(cell).splitlines()
                     if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line]
            solutions[meta["grade_id"]] = "\n".join(lines)
    nb = json.loads(release.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in solutions:
            cell["source"] = solutions[gid]
    return nb


def student_env(repo: Path) -> dict[str, str]:
    """A student's environment: the repository's own package first (as `pip install -e .`)."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    return dict(env, PYTHONPATH=str(repo))


def mine(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m tinytorch.mine ARGS`` in the student repository."""
    return subprocess.run([sys.executable, "-m", "tinytorch.mine", *args], cwd=repo,
                          env=student_env(repo), capture_output=True, text=True, timeout=900)


def run_notebook(repo: Path, rel: str) -> nbformat.NotebookNode:
    """Run a notebook of the repository in a fresh kernel, in its folder; errors are kept
    as outputs."""
    import nbclient

    path = repo / rel
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=student_env(repo), stderr=subprocess.DEVNULL)
    return nb


def printed(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook's cells printed (stdout and stderr)."""
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.outputs if out.output_type == "stream")


def errors(nb: nbformat.NotebookNode) -> list[Any]:
    return [out for cell in nb.cells if cell.cell_type == "code"
            for out in cell.outputs if out.output_type == "error"]


def result_line(text: str, name: str) -> dict[str, str]:
    """The key=value pairs of the last ``RESULT <name>`` line of a milestone's output."""
    lines = [line for line in text.splitlines() if line.startswith(f"RESULT {name} ")]
    assert lines, f"no RESULT {name} line in:\n{text[-3000:]}"
    return dict(item.split("=", 1) for item in lines[-1].split()[2:])


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The student repository released through 08, every notebook completed and exported."""
    repo = tmp_path_factory.mktemp("student") / "repo"
    publish(COURSE, repo, MODULES[-1].number, preview=True, log=lambda line: None)
    for m in MODULES:
        rel = repo / "release" / m.folder / m.notebook_name
        rel.write_text(json.dumps(completed(rel, m.source_notebook), indent=1))
    run = mine(repo)
    assert run.returncode == 0, run.stdout + run.stderr
    return repo


def copy_of(repo: Path, dest: Path) -> Path:
    shutil.copytree(repo, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_export_is_the_code_course_build_exports(student: Path) -> None:
    """Each module's file in mine/ holds, after its header, exactly what `course build`
    exported from the module into the reference package (the solutions are the same code);
    the record names the notebook and the visible tests that passed."""
    record = json.loads((student / "mine" / "exported.json").read_text())
    assert sorted(record) == [m.folder for m in MODULES]
    for m in MODULES:
        ours = (student / "mine" / f"{m.name}.py").read_text(encoding="utf-8")
        theirs = m.export.read_text(encoding="utf-8")
        assert ours.split('"""\n', 2)[2] == theirs.split('"""\n', 2)[2], m.folder
        assert ours.startswith(f'"""Module {m.number} ({m.name}): your own code, exported from '
                               f"release/{m.folder}/{m.notebook_name}")
        tests = sum(1 for c in json.loads(m.release_notebook.read_text())["cells"]
                    if c.get("metadata", {}).get("nbgrader", {}).get("grade"))
        assert record[m.folder]["visible_tests"] == tests > 0, m.folder
    assert (student / "mine" / ".gitignore").read_text().splitlines()[-1] == "*"
    again = mine(student)
    assert again.returncode == 0 and again.stdout.count("unchanged since its export") == 8


def test_module_tests_pass_on_the_exported_package(student: Path, tmp_path: Path) -> None:
    """The modules in mine/, as a package of their own, behave as the reference code: the
    course's module tests (tests/01..08) pass on them."""
    package = tmp_path / "tinytorch"
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    for m in MODULES:
        shutil.copy(student / "mine" / f"{m.name}.py", package / "core" / f"{m.name}.py")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    where = subprocess.run(
        [sys.executable, "-c", "import importlib; print(*(importlib.import_module("
         f"'tinytorch.core.' + n).__file__ for n in {[m.name for m in MODULES]!r}))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(path).parent == package / "core" for path in where), where
    tests = [str(ROOT / "tests" / m.folder) for m in MODULES]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
         "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), *tests],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout


@pytest.mark.parametrize("milestone", milestones(COURSE), ids=lambda ms: ms.folder)
def test_milestone_reaches_the_reference_numbers(student: Path, tmp_path: Path,
                                                 milestone: Any) -> None:
    """The published notebook on the student's modules, against the milestone run as a
    script on the reference code: the same numbers, every claim held, the student's modules
    named at the top, the plots in the notebook."""
    name = milestone.source.stem
    nb = run_notebook(student, milestone.rel_notebook)
    assert not errors(nb), errors(nb)
    text = printed(nb)
    ours = result_line(text, name)
    script = subprocess.run([sys.executable, str(milestone.source), "--quiet", "--out",
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert script.returncode == 0, script.stdout + script.stderr
    reference = result_line(script.stdout, name)
    assert {k: v for k, v in ours.items() if k not in NOT_COMPARED} == \
        {k: v for k, v in reference.items() if k not in NOT_COMPARED}
    needed = needs(COURSE, milestone)
    assert ours["yours"] == ",".join(m.number for m in needed) and ours["culprits"] == "none"
    assert reference["yours"] == "none"
    for m in needed:
        assert f"  {m.number} {m.name:<12} yours     mine/{m.name}.py" in text, text[:2000]
    assert any("image/png" in out.get("data", {}) for cell in nb.cells
               if cell.cell_type == "code" for out in cell.outputs), "no plot in the notebook"


def _plant(nb: dict[str, Any], grade_id: str, old: str, new: str) -> dict[str, Any]:
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            assert old in _source(cell), f"{grade_id}: {old!r} not found"
            cell["source"] = _source(cell).replace(old, new)
            return nb
    raise AssertionError(f"no cell {grade_id}")


BIAS = ("            self.bias = Parameter(rng.uniform(-bound, bound, "
        "size=(self.out_features,)).astype(np.float32))\n")


def test_planted_bug_is_exported_and_the_milestone_names_module_03(student: Path,
                                                                   tmp_path: Path) -> None:
    """A Linear whose bias never gets a gradient passes module 03's visible tests, so the
    export takes it; the perceptron then misses its claims, and the milestone, trying the
    student's modules one at a time on the reference code, names module 03, with the
    student's numbers beside the reference's."""
    repo = copy_of(student, tmp_path / "repo")
    layers = next(m for m in MODULES if m.name == "layers")
    nb = completed(layers.release_notebook, layers.source_notebook)
    _plant(nb, "layers_linear", BIAS, BIAS + "            self.bias.requires_grad = False\n")
    buggy = tmp_path / "layers.ipynb"
    buggy.write_text(json.dumps(nb))
    run = mine(repo, "03", str(buggy))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "module 03 (layers): exported to mine/layers.py" in run.stdout
    assert "self.bias.requires_grad = False" in (repo / "mine" / "layers.py").read_text()
    perceptron = next(ms for ms in milestones(COURSE) if ms.source.stem == "perceptron")
    out = run_notebook(repo, perceptron.rel_notebook)
    text = printed(out)
    assert not errors(out), errors(out)
    values = result_line(text, "perceptron")
    assert values["culprits"] == "03_layers", values
    assert values["matches_hand_rule"] == "False", values
    verdict = text[text.index("Module 03 (layers) misbehaved"):]
    assert "yours:     train_accuracy" in verdict and "reference: train_accuracy 1.00" in verdict
    for other in ("01 tensor", "02 activations", "06 autograd", "07 optimizers"):
        assert f"  {other}: yours" in text and f"Module {other[:2]}" not in text


def test_code_that_raises_is_named_with_its_file_and_line(student: Path,
                                                          tmp_path: Path) -> None:
    """A module of the student's whose code raises during a milestone: the milestone stops
    with a message (not a bare traceback) naming that module and the line in mine/."""
    repo = copy_of(student, tmp_path / "repo")
    losses = repo / "mine" / "losses.py"
    text = losses.read_text()
    marker = "class BinaryCrossEntropyLoss"
    at = text.index("    def __call__(", text.index(marker))
    body = text.index("\n", at) + 1
    losses.write_text(text[:body] + '        raise ValueError("planted: no BCE today")\n'
                      + text[body:])
    xor = next(ms for ms in milestones(COURSE) if ms.source.stem == "xor")
    out = run_notebook(repo, xor.rel_notebook)
    found = errors(out)  # the first stops Run All; the cells after it fail for want of it
    assert found and found[0]["ename"] == "MilestoneError", found
    message = "\n".join(found[0]["traceback"])
    assert "Module 04 (losses) raised ValueError: planted: no BCE today" in message, message
    assert "at mine/losses.py, line" in message and "raise ValueError" in message
    assert "Traceback" not in message
    assert "RESULT xor" not in printed(out)


def _state(repo: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((repo / "mine").iterdir()) if p.is_file()}


def test_refused_notebooks_change_nothing(student: Path, tmp_path: Path) -> None:
    """Not completed, a failing visible test, a cell that raises, a broken file: each is
    refused (exit 1) with the reason, and mine/ is as it was."""
    repo = copy_of(student, tmp_path / "repo")
    before = _state(repo)
    act = next(m for m in MODULES if m.name == "activations")
    good = completed(act.release_notebook, act.source_notebook)
    untouched = tmp_path / "untouched" / "activations.ipynb"
    untouched.parent.mkdir()
    shutil.copy(act.release_notebook, untouched)
    cases = {"not-completed": (untouched, "not completed: activations_relu")}
    # a ReLU that returns its input: the cell runs, the visible test below it fails
    failing = json.loads(json.dumps(good))
    for cell in failing["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "activations_relu":
            cell["source"] = _source(cell) + "\n\nReLU.__call__ = lambda self, x: x\n"
    raising = json.loads(json.dumps(good))
    raising["cells"].insert(3, nbformat.v4.new_code_cell("1 / 0"))
    for name, nb in (("failing", failing), ("raising", raising)):
        path = tmp_path / name / "activations.ipynb"
        path.parent.mkdir()
        path.write_text(json.dumps(nb))
        cases[name] = (path, {"failing": "the visible test activations_test_relu fails",
                              "raising": "raises ZeroDivisionError"}[name])
    broken = tmp_path / "broken" / "activations.ipynb"
    broken.parent.mkdir()
    broken.write_text(untouched.read_text()[:500])
    cases["broken"] = (broken, "not a notebook")
    for name, (path, words) in cases.items():
        run = mine(repo, "02", str(path))
        assert run.returncode == 1, (name, run.stdout, run.stderr)
        said = run.stderr.strip().splitlines()
        assert said and said[0].startswith("module 02 (activations): refused, nothing changed: ")
        assert words in said[0], (name, said)
        assert "Traceback" not in run.stderr
        assert _state(repo) == before, f"{name}: mine/ changed"


def test_list_remove_and_reference_only(student: Path, tmp_path: Path) -> None:
    """--list names the student's modules; --remove puts the reference code back; a
    milestone's REFERENCE_ONLY switch uses the reference code wherever it is published
    (module 08, the module in hand, has none: the student's is used and the table says so)."""
    repo = copy_of(student, tmp_path / "repo")
    listed = mine(repo, "--list")
    assert listed.returncode == 0 and "module 08 (training)" in listed.stdout
    removed = mine(repo, "--remove", "layers")
    assert removed.returncode == 0 and "module 03 (layers): removed" in removed.stdout
    assert not (repo / "mine" / "layers.py").exists()
    assert "reference code for: 03" in removed.stdout
    code = ("from tinytorch.mine import framework_files\n"
            "names = [m for m in __import__('tinytorch.core').core.MODULES]\n"
            "for only in (False, True):\n"
            "    print(only, [c.whose for c in framework_files(names, only).values()])\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=repo, env=student_env(repo),
                         capture_output=True, text=True, timeout=120)
    mixed, reference = run.stdout.splitlines()
    assert mixed == "False " + str(["yours"] * 2 + ["reference"] + ["yours"] * 5), run.stdout
    assert reference == "True " + str(["reference"] * 7 + ["yours"]), run.stdout


def test_the_notebooks_last_cell(student: Path, tmp_path: Path) -> None:
    """The export cell of a notebook exports that notebook as saved when it runs in JupyterLab
    (which names the notebook in JPY_SESSION_NAME); run any other way (nbgrader's Validate,
    a script) it says how to export instead, and outside a student repository (the
    instructor's, the grader's sandbox) it exports nothing."""
    repo = copy_of(student, tmp_path / "repo")
    (repo / "mine" / "layers.py").unlink()
    layers = next(m for m in MODULES if m.name == "layers")
    cells = nbformat.read(layers.release_notebook, as_version=4).cells
    (cell,) = [c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == "layers_mine"]
    assert cell.metadata["nbgrader"]["locked"] is True
    assert cell.source == 'import tinytorch\n\ntinytorch.make_mine("03_layers")'
    env = {k: v for k, v in student_env(repo).items() if k != "JPY_SESSION_NAME"}

    def run(cwd: Path, **extra: str) -> str:
        done = subprocess.run([sys.executable, "-c", cell.source], cwd=cwd,
                              env={**env, **extra}, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stdout

    notebook = repo / "release" / layers.folder / layers.notebook_name
    said = run(notebook.parent)
    assert "Nothing exported: run this cell in JupyterLab" in said
    assert "python -m tinytorch.mine 03" in said and not (repo / "mine" / "layers.py").exists()
    said = run(notebook.parent, JPY_SESSION_NAME=str(notebook))
    assert f"Exporting {layers.notebook_name} as saved at" in said
    assert "module 03 (layers): exported to mine/layers.py" in said
    assert (repo / "mine" / "layers.py").is_file()
    instructor = run(ROOT / "release" / layers.folder, PYTHONPATH=str(ROOT),
                     JPY_SESSION_NAME=str(layers.release_notebook))
    assert "not in a student repository" in instructor


def test_a_module_neither_exported_nor_published_stops_the_milestone(student: Path,
                                                                     tmp_path: Path) -> None:
    """Module 08 is the module in hand, so its reference code is not published: without the
    student's own, the milestone cannot run, and says what to do."""
    repo = copy_of(student, tmp_path / "repo")
    assert mine(repo, "--remove", "08").returncode == 0
    xor = next(ms for ms in milestones(COURSE) if ms.source.stem == "xor")
    found = errors(run_notebook(repo, xor.rel_notebook))
    assert found and found[0]["ename"] == "MilestoneError", found
    message = found[0]["evalue"]
    assert "Milestone 2 cannot run yet: module 08 (training)" in message, message
    assert "complete release/08_training/training.ipynb" in message
    assert "python -m tinytorch.mine 08" in message
