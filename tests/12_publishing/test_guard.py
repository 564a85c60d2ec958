"""The leak guard of ``course publish``: a planted leak in any kind of file stops it, before
anything is written.

Each case starts from the clean tree of ``--through 03`` (so modules 03..08 keep their
solutions) and plants one thing: a hidden-test line or a solution line of module 03 or
later in every kind of file the student repository has (README, binder files, pyproject,
the package of an earlier module, a stub, a notebook's cell, output or metadata), the
region markers, or a file of the instructor's (module source, source notebook, gradebook,
grader configuration, example submission, a stray file).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from pubtools import blocks, git, tree_bytes

from coursekit.authoring.student_repository import read
from coursekit.course import Course, CourseError
from coursekit.publishing import publish as publishing
from coursekit.publishing.guard import TreeLeakError, check_tree, tree_secrets


def _first_line(course: Course, folder: str, kind: str) -> str:
    """A telling line (at least 25 characters, no comment) of a block of the source notebook."""
    module = next(m for m in course.modules() if m.folder == folder)
    for block in blocks(module.source_notebook, kind):
        for line in block.splitlines():
            text = line.strip()
            if len(text) >= 25 and not text.startswith("#") and not text.startswith("import"):
                return line
    raise AssertionError(f"{folder}: no {kind} line to plant")


def _plan(course: Course, through: str = "03") -> publishing.Plan:
    module = next(m for m in course.modules() if m.number == through)
    return publishing.Plan.of(course, module)


def _clean(course: Course, through: str = "03") -> dict[str, bytes]:
    return publishing.student_tree(course, read(course), _plan(course, through))


def _problems(course: Course, files: dict[str, bytes], through: str = "03") -> list[str]:
    plan = _plan(course, through)
    expected = set(publishing.layout(course, read(course), plan))
    return check_tree(files, expected, tree_secrets(course, plan.through),
                      publishing.binary_files(course))


@pytest.mark.parametrize("through", ["01", "03", "08"])
def test_clean_trees_pass(course: Course, through: str) -> None:
    assert _problems(course, _clean(course, through), through) == []


def test_secrets_follow_the_rule(course: Course) -> None:
    """--through 03: hidden tests of every module, solutions of 03..08, not of 01 and 02."""
    secrets = tree_secrets(course, _plan(course).through)
    by = {(s.module, s.kind) for s in secrets.values()}
    for m in course.modules():
        assert (m.folder, "hidden test") in by, f"no hidden-test line of {m.folder}"
        assert ((m.folder, "solution") in by) == (m.number >= "03"), m.folder


def _append(rel: str, line: str) -> Callable[[dict[str, bytes]], None]:
    def plant(files: dict[str, bytes]) -> None:
        files[rel] = files[rel] + ("\n" + line + "\n").encode()
    return plant


def _in_notebook(rel: str, where: str, line: str) -> Callable[[dict[str, bytes]], None]:
    """Put ``line`` into a notebook's solution cell, an output or the notebook metadata."""
    def plant(files: dict[str, bytes]) -> None:
        nb = json.loads(files[rel])
        cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
        if where == "cell":
            cell["source"] = line
        elif where == "output":
            code = next(c for c in nb["cells"] if c["cell_type"] == "code")
            code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": [line]}]
        else:
            nb["metadata"]["scratch"] = {"note": line}
        files[rel] = json.dumps(nb, indent=1).encode()
    return plant


def _gradebook(tmp: Path) -> bytes:
    path = tmp / "gradebook.db"
    with sqlite3.connect(path) as db:
        db.execute("create table grade (student text, score real)")
    return path.read_bytes()


HIDDEN_03 = ("03_layers", "HIDDEN TESTS")
HIDDEN_01 = ("01_tensor", "HIDDEN TESTS")
SOLUTION_03 = ("03_layers", "SOLUTION")
SOLUTION_07 = ("07_optimizers", "SOLUTION")

# (case id, what is planted, the file the guard must name, words of its message)
LINE_CASES = [
    ("readme-hidden-01", HIDDEN_01, lambda line: _append("README.md", line), "README.md",
     "hidden test line of 01_tensor"),
    ("readme-solution-as-comment", SOLUTION_03, lambda line: _append("README.md", f"<!-- "
     f"{line.strip()} -->"), None, None),
    ("postBuild-hidden-as-comment", HIDDEN_03,
     lambda line: _append("binder/postBuild", f"# {line.strip()}"), "binder/postBuild",
     "hidden test line of 03_layers"),
    ("requirements-solution", SOLUTION_07,
     lambda line: _append("binder/requirements.txt", f"# {line.strip()}"),
     "binder/requirements.txt", "solution line of 07_optimizers"),
    ("pyproject-solution", SOLUTION_03,
     lambda line: _append("pyproject.toml", f"# {line.strip()}"), "pyproject.toml",
     "solution line of 03_layers"),
    ("earlier-package-solution-of-nn", SOLUTION_03,
     lambda line: _append("tinytorch/core/tensor.py", line), "tinytorch/core/tensor.py",
     "solution line of 03_layers"),
    ("stub-later-solution", SOLUTION_07,
     lambda line: _append("tinytorch/core/optimizers.py", line),
     "tinytorch/core/optimizers.py", "solution line of 07_optimizers"),
    ("package-init-hidden", HIDDEN_03,
     lambda line: _append("tinytorch/core/__init__.py", line), "tinytorch/core/__init__.py",
     "hidden test line of 03_layers"),
    ("notebook-solution-cell", SOLUTION_03,
     lambda line: _in_notebook("release/03_layers/layers.ipynb", "cell", line),
     "release/03_layers/layers.ipynb", "solution line of 03_layers"),
    ("notebook-output-hidden", HIDDEN_03,
     lambda line: _in_notebook("release/02_activations/activations.ipynb", "output", line),
     "release/02_activations/activations.ipynb", "hidden test line of 03_layers"),
    ("notebook-metadata-hidden", HIDDEN_01,
     lambda line: _in_notebook("release/01_tensor/tensor.ipynb", "metadata", line),
     "release/01_tensor/tensor.ipynb", "hidden test line of 01_tensor"),
    ("marker-gitignore", HIDDEN_03,
     lambda line: _append(".gitignore", "### BEGIN HIDDEN TESTS"), ".gitignore",
     "region marker"),
]


@pytest.mark.parametrize("case", LINE_CASES, ids=[c[0] for c in LINE_CASES])
def test_planted_line_is_found(course: Course, case: tuple) -> None:
    _, (folder, kind), make, rel, words = case
    line = _first_line(course, folder, kind)
    files = _clean(course)
    make(line)(files)
    problems = _problems(course, files)
    rel = rel or "README.md"
    words = words or f"solution line of {folder}"
    assert any(p.startswith(rel) and words in p for p in problems), (
        f"planted {kind} line {line.strip()!r} in {rel}; the guard said: {problems}")


FILE_CASES = [
    ("module-source", "modules/03_layers/layers.py",
     lambda c, tmp: (c.root / "modules/03_layers/layers.py").read_bytes(), "module source"),
    ("module-source-renamed", "notes.py",
     lambda c, tmp: (c.root / "modules/05_dataloader/dataloader.py").read_bytes(),
     "module source"),
    ("source-notebook", "source_notebooks/03_layers/layers.ipynb",
     lambda c, tmp: (c.root / "source_notebooks/03_layers/layers.ipynb").read_bytes(),
     "source notebook"),
    ("source-notebook-as-release", "release/03_layers/layers.ipynb",
     lambda c, tmp: (c.root / "source_notebooks/03_layers/layers.ipynb").read_bytes(),
     "region marker"),
    ("gradebook", "gradebook.db", lambda c, tmp: _gradebook(tmp), "gradebook"),
    ("gradebook-renamed", "release/03_layers/data.bin", lambda c, tmp: _gradebook(tmp),
     "gradebook"),
    ("grader-config", "grader_config.py",
     lambda c, tmp: (c.root / "grader_config.py").read_bytes(), "grader configuration"),
    ("nbgrader-config", "release/03_layers/nbgrader_config.py",
     lambda c, tmp: b"c = get_config()\n", "grader configuration"),
    ("example-submission", "examples/submissions/ada_complete/01_tensor/tensor.ipynb",
     lambda c, tmp: (c.root / "release/01_tensor/tensor.ipynb").read_bytes(), "student work"),
    ("stray-release-file", "release/03_layers/layers.py", lambda c, tmp: b"x = 1\n",
     "unexpected file"),
    ("reference-of-nn-in-package", "tinytorch/core/layers.py",
     lambda c, tmp: (c.root / "tinytorch/core/layers.py").read_bytes(),
     "solution line of 03_layers"),
]


def test_the_data_file_must_be_the_courses(course: Course) -> None:
    """The milestones' data is the one file that is not text: it may only be the course's
    own bytes (a changed file is reported, whatever it holds)."""
    files = _clean(course, "08")
    files["tinytorch/data/digits.npz"] += b"x"
    problems = _problems(course, files, "08")
    assert problems == ["tinytorch/data/digits.npz: not the course's file (its bytes differ)"]


@pytest.mark.parametrize("case", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_planted_file_is_found(course: Course, tmp_path: Path, case: tuple) -> None:
    _, rel, data, words = case
    files = _clean(course)
    files[rel] = data(course, tmp_path)
    problems = _problems(course, files)
    assert any(p.startswith(rel) and words in p for p in problems), (
        f"planted {rel}; the guard said: {problems}")


def _plant_hidden_line(course: Course, monkeypatch: pytest.MonkeyPatch) -> str:
    line = _first_line(course, "08_training", "HIDDEN TESTS")
    real = publishing.student_tree

    def leaky(*args, **kwargs):  # the tree as built, with one hidden-test line in README
        files = real(*args, **kwargs)
        files["README.md"] += f"\n{line}\n".encode()
        return files

    monkeypatch.setattr(publishing, "student_tree", leaky)
    return line


def test_publish_writes_nothing_into_a_new_folder_on_a_leak(
        course: Course, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line = _plant_hidden_line(course, monkeypatch)
    dest = tmp_path / "student"
    with pytest.raises(TreeLeakError) as err:
        publishing.publish(course, dest, "03", log=lambda _: None)
    assert line.strip() in str(err.value) and "nothing was written" in str(err.value)
    assert not dest.exists(), "the folder was created although the guard failed"


def test_publish_leaves_a_student_repository_as_it_was_on_a_leak(
        course: Course, published: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "student"
    shutil.copytree(published["03"], dest)
    before, head = tree_bytes(dest), git(dest, "rev-parse", "HEAD")
    _plant_hidden_line(course, monkeypatch)
    with pytest.raises(TreeLeakError):
        publishing.publish(course, dest, "05", log=lambda _: None)
    assert tree_bytes(dest) == before and git(dest, "rev-parse", "HEAD") == head


def test_leak_in_the_instructors_package_stops_publish(course: Course, tmp_path: Path) -> None:
    """The real path, no patching: a hidden-test line that found its way into the reference
    package of an earlier module (say, pasted into tinytorch/core/tensor.py)."""
    root = tmp_path / "course"
    shutil.copytree(course.root, root)
    copy = Course(root)
    line = _first_line(copy, "04_losses", "HIDDEN TESTS")
    with open(root / "tinytorch/core/tensor.py", "a", encoding="utf-8") as out:
        out.write(f"\n# {line.strip()}\n")
    with pytest.raises(CourseError, match="hidden test line of 04_losses"):
        publishing.publish(copy, tmp_path / "student", "05", log=lambda _: None)
    assert not (tmp_path / "student").exists()
