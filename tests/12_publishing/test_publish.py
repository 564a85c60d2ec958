"""``course publish``: the student repository, file by file, for ``--through 03`` and ``08``.

The expected tree is written out here from the rules (not taken from the publishing code):
release notebooks 01..NN exactly as ``course release`` wrote them, the package with the
modules before NN only, a failing import for NN and later, ``binder/``, a README, and
nothing of the instructor's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pubtools import (
    REPO,
    TEST_BRANCH,
    TEST_SLUG,
    blocks,
    cell_text,
    git,
    load_nb,
    searchable,
    tree_bytes,
)

from coursekit.course import Course

THROUGHS = ("03", "08")
DEV_TOOLS = ("pytest", "ruff", "hypothesis", "playwright", "iniconfig", "pluggy", "greenlet")


def _modules(course: Course, through: str) -> tuple[list, list, list]:
    mods = course.modules()
    return ([m for m in mods if m.number <= through],
            [m for m in mods if m.number < through],
            [m for m in mods if m.number >= through])


@pytest.mark.parametrize("through", THROUGHS)
def test_tree_holds_exactly_the_student_files(course: Course, published: dict[str, Path],
                                              through: str) -> None:
    """Committed files: the rules' list and nothing else (no modules/, source notebooks,
    gradebooks, grader configuration, examples)."""
    dest = published[through]
    notebooks, _, _ = _modules(course, through)
    expected = {
        ".course-publish.json", ".gitignore", "README.md", "pyproject.toml",
        "nbgrader_config.py", "binder/requirements.txt", "binder/postBuild",
        "binder/runtime.txt", "binder/student-mode.json",
        "tinytorch/__init__.py", "tinytorch/core/__init__.py", "tinytorch/mine.py",
        "tinytorch/milestone.py", "tinytorch/submit.py", "tinytorch/handin.py",
        *(f"release/{m.folder}/{m.name}.ipynb" for m in notebooks),
        *(f"tinytorch/core/{m.name}.py" for m in course.modules()),
    }
    if through == "08":  # every milestone needs module 08's Trainer
        expected |= {"milestones/README.md", "tinytorch/data/digits.npz",
                     "tinytorch/data/README.md",
                     "milestones/01_perceptron_1958/perceptron.ipynb",
                     "milestones/02_xor_1969/xor.ipynb",
                     "milestones/03_mlp_digits_1986/mlp_digits.ipynb"}
    committed = set(git(dest, "ls-files").split())
    assert committed == expected, (
        f"unexpected: {sorted(committed - expected)}; missing: {sorted(expected - committed)}")
    assert set(tree_bytes(dest)) == expected, "files on disk that are not committed"
    assert not git(dest, "status", "--porcelain").strip()
    for path in committed:
        top = path.split("/", 1)[0]
        assert top not in {"modules", "source_notebooks", "examples", "grading"}, path
        assert not re.search(r"\.(db|sqlite3?)$|gradebook|(^|/)grader_config", path)


@pytest.mark.parametrize("through", THROUGHS)
def test_one_commit_on_the_configured_branch(published: dict[str, Path], through: str) -> None:
    dest = published[through]
    log = git(dest, "log", "--format=%s").splitlines()
    assert log == [f"Publish modules 01-{through} (package 01-{int(through) - 1:02d})"]
    assert git(dest, "symbolic-ref", "--short", "HEAD").strip() == TEST_BRANCH
    modes = dict(line.split("\t")[::-1] for line in git(dest, "ls-files", "-s").splitlines())
    assert modes["binder/postBuild"].startswith("100755"), "postBuild must be executable"


@pytest.mark.parametrize("through", THROUGHS)
def test_release_notebooks_are_the_released_ones(course: Course, published: dict[str, Path],
                                                 through: str) -> None:
    """Byte for byte what `course release` wrote; the Colab cell installs from the student
    repository; no solution region, no hidden test."""
    dest = published[through]
    notebooks, _, _ = _modules(course, through)
    url = f"git+https://github.com/{TEST_SLUG}@{TEST_BRANCH}"
    for m in notebooks:
        rel = f"release/{m.folder}/{m.name}.ipynb"
        assert (dest / rel).read_bytes() == m.release_notebook.read_bytes(), rel
        code = [c for c in load_nb(dest / rel)["cells"] if c["cell_type"] == "code"]
        assert f'"tinytorch-course @ {url}"' in cell_text(code[0]), f"{rel}: Colab cell"
        text = (dest / rel).read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text


@pytest.mark.parametrize("through", THROUGHS)
def test_package_holds_the_modules_before_nn_only(course: Course, published: dict[str, Path],
                                                  through: str) -> None:
    """tinytorch/core/<name>.py of a module before NN is the reference code (its header
    aside); NN and later are stubs whose import fails and says why, holding no code."""
    dest = published[through]
    _, package, stubs = _modules(course, through)
    for m in package:
        ours = (dest / "tinytorch/core" / f"{m.name}.py").read_text(encoding="utf-8")
        theirs = m.export.read_text(encoding="utf-8")
        body = theirs.split('"""\n', 2)[2]  # after the build's header docstring
        assert ours.endswith(body), f"{m.name}.py: not the reference code"
        assert "modules/" not in ours.split('"""', 2)[1], "header points at instructor files"
    for m in stubs:
        text = (dest / "tinytorch/core" / f"{m.name}.py").read_text(encoding="utf-8")
        assert "raise ModuleNotFoundError" in text
        assert not re.search(r"(?m)^\s*(def|class) ", text), f"{m.name}.py stub holds code"


def _import(dest: Path, statement: str) -> subprocess.CompletedProcess[str]:
    """Run ``statement`` in a fresh Python that finds the published package first."""
    env = dict(os.environ, PYTHONPATH=str(dest))
    code = f"import tinytorch, sys; print(tinytorch.__file__); {statement}"
    return subprocess.run([sys.executable, "-c", code], cwd=dest, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("through", THROUGHS)
def test_imports_from_the_published_package(course: Course, published: dict[str, Path],
                                            through: str) -> None:
    """Modules before NN import; NN's import fails naming the notebook to write it in; a later
    one says it is not released yet."""
    dest = published[through]
    _, package, stubs = _modules(course, through)
    ok = _import(dest, "; ".join(f"import tinytorch.core.{m.name}" for m in package))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0].startswith(str(dest)), "imported the instructor's package"
    here = stubs[0]
    failed = _import(dest, f"import tinytorch.core.{here.name}")
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: "), last
    assert f"release/{here.folder}/{here.name}.ipynb" in last and "you write" in last, last
    for later in stubs[1:]:
        failed = _import(dest, f"from tinytorch.core.{later.name} import *")
        assert "not released yet" in failed.stderr.strip().splitlines()[-1], failed.stderr


@pytest.mark.parametrize("through", THROUGHS)
def test_no_hidden_test_and_no_solution_of_nn_or_later(course: Course,
                                                       published: dict[str, Path],
                                                       through: str) -> None:
    """Whole blocks, as the instructor wrote them, searched for in every file: every hidden
    test block of every module, every solution block of NN and later."""
    files = {rel: searchable(rel, data) for rel, data in tree_bytes(published[through]).items()}
    _, _, later = _modules(course, through)
    secret = [(m.folder, "hidden test", b) for m in course.modules()
              for b in blocks(m.source_notebook, "HIDDEN TESTS")]
    secret += [(m.folder, "solution", b) for m in later
               for b in blocks(m.source_notebook, "SOLUTION")]
    checked = 0
    for folder, kind, block in secret:
        if len(block.strip()) < 40:  # a one-liner such as "return x" says nothing
            continue
        checked += 1
        for rel, text in files.items():
            assert block not in text, f"{rel}: a {kind} block of {folder}:\n{block[:300]}"
    assert checked > 50, f"only {checked} blocks were long enough to look for"


def test_package_of_nn_minus_one_carries_its_solutions(course: Course,
                                                       published: dict[str, Path]) -> None:
    """The rule's other side: the solution code of the modules before NN is there."""
    dest = published["03"]
    for m in course.modules()[:2]:
        text = (dest / "tinytorch/core" / f"{m.name}.py").read_text(encoding="utf-8")
        found = [b for b in blocks(m.source_notebook, "SOLUTION") if b in text]
        assert found, f"no solution of {m.folder} in the package"


@pytest.mark.parametrize("through", THROUGHS)
def test_readme_for_students(course: Course, published: dict[str, Path], through: str) -> None:
    """Binder on the notebook of NN, Colab for 01..NN only, how to hand in and get feedback;
    every relative link points at a file of the repository."""
    dest = published[through]
    text = (dest / "README.md").read_text(encoding="utf-8")
    notebooks, _, _ = _modules(course, through)
    current = f"release/{notebooks[-1].folder}/{notebooks[-1].name}.ipynb"
    assert (f"https://mybinder.org/v2/gh/{TEST_SLUG}/{TEST_BRANCH}?urlpath=lab/tree/{current}"
            in text)
    colab = re.findall(rf"https://colab\.research\.google\.com/github/{TEST_SLUG}/blob/"
                       rf"{TEST_BRANCH}/(release/[^)]+)\)", text)
    assert colab == [f"release/{m.folder}/{m.name}.ipynb" for m in notebooks]
    for heading in ("## Open a notebook", "## Check your work", "## Hand in", "## Feedback"):
        assert heading in text
    assert f"git clone https://github.com/{TEST_SLUG}.git" in text
    for target in re.findall(r"\]\(((?!https?:)[^)]+)\)", text):
        assert (dest / target).is_file(), f"README links to {target}, not in the repository"
    assert "your-org" not in text and "modules/" not in text


@pytest.mark.parametrize("through", THROUGHS)
def test_binder_is_the_student_image(published: dict[str, Path], through: str) -> None:
    """binder/: student tools only, every package pinned at the course's version;
    postBuild installs the repository's own package."""
    dest = published[through]
    req = (dest / "binder/requirements.txt").read_text(encoding="utf-8")
    pins = dict(line.split("==") for line in req.splitlines()
                if line.strip() and not line.startswith("#"))
    names = {n.lower() for n in pins}
    for tool in DEV_TOOLS:
        assert tool not in names, f"binder/requirements.txt holds the developer tool {tool}"
    for need in ("jupyterlab", "nbgrader", "jupytext", "numpy", "matplotlib", "ipykernel"):
        assert need in names, f"binder/requirements.txt lacks {need}"
    course_pins = dict(line.split("==") for line in
                       (REPO / "requirements.txt").read_text().splitlines()
                       if "==" in line and not line.startswith("#"))
    for name, version in pins.items():
        assert course_pins.get(name) == version, f"{name}=={version}: not the course's pin"
    post = (dest / "binder/postBuild").read_text(encoding="utf-8")
    assert "pip install --no-deps -e ." in post
    assert "modules/" not in post and "Jupytext Notebook" not in post
    project = tomllib.loads((dest / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["tinytorch*"]


@pytest.mark.parametrize("through", THROUGHS)
def test_marker_names_what_was_published(course: Course, published: dict[str, Path],
                                         through: str) -> None:
    marker = json.loads((published[through] / ".course-publish.json").read_text())
    notebooks, package, _ = _modules(course, through)
    assert marker == {
        "made_by": "course publish", "slug": TEST_SLUG, "branch": TEST_BRANCH,
        "through": notebooks[-1].folder, "notebooks": [m.folder for m in notebooks],
        "package": [m.folder for m in package],
        "milestones": (["01_perceptron_1958", "02_xor_1969", "03_mlp_digits_1986"]
                       if through == "08" else []),
    }


def _preview(course: Course, dest: Path, through: str) -> Path:
    from coursekit.publishing.publish import publish

    publish(course, dest, through, preview=True, log=lambda line: None)
    return dest


@pytest.mark.parametrize("through", ["02", "07"])
def test_words_follow_what_was_published(course: Course, tmp_path: Path, through: str) -> None:
    """One module is "module 01", not "modules 01"; the hand-in example is the notebook of
    the module in hand, never one of a module not released yet."""
    dest = _preview(course, tmp_path / "repo", through)
    _, package, later = _modules(course, through)
    texts = {rel: " ".join(searchable(rel, data).split())
             for rel, data in tree_bytes(dest).items() if not rel.endswith(".ipynb")}
    for rel, text in texts.items():
        assert "modules 01 " not in text and "modules 01," not in text \
            and "modules 01)" not in text, f"{rel}: 'modules 01' for one module"
    if len(package) == 1:
        assert "module 01" in texts["README.md"] and "module 01" in texts["pyproject.toml"]
    current = later[0]
    readme = texts["README.md"]
    assert f"(`{current.name}.ipynb` for module {current.number})" in readme, readme
    for m in later[1:]:
        assert f"{m.name}.ipynb" not in readme, f"the README names {m.name}.ipynb"


def test_nbgrader_validate_finds_the_students_config(published: dict[str, Path]) -> None:
    """`nbgrader validate` from the repository's root reads its nbgrader_config.py (no "No
    nbgrader_config.py file found"), which holds the grader's limit per cell and no path of
    the instructor's."""
    import nbgrader  # noqa: F401  (nbgrader validate is its command line)

    from coursekit import nbg

    dest = published["03"]
    config = (dest / "nbgrader_config.py").read_text(encoding="utf-8")
    timeout = nbg.load_config(Course(REPO)).Execute.timeout
    assert f"c.Execute.timeout = {timeout!r}" in config, config
    assert "CourseDirectory" not in config and "db_url" not in config
    run = subprocess.run([sys.executable, "-m", "nbgrader", "validate",
                          "release/01_tensor/tensor.ipynb"], cwd=dest, capture_output=True,
                         text=True, timeout=300)
    said = run.stdout + run.stderr
    assert "No nbgrader_config.py file found" not in said, said
    assert "NotImplementedError" in said or "failed" in said.lower(), said


@pytest.mark.parametrize("through", ["05", "07", "08"])
def test_milestones_come_with_the_modules_they_need(course: Course, tmp_path: Path,
                                                    through: str) -> None:
    """A milestone is published once every module it needs is released: all three need
    module 08 (the Trainer), so --through 05 or 07 carries none of them and no data; 08
    carries all three, their data (the course's file, byte for byte) and a README."""
    dest = _preview(course, tmp_path / "repo", through)
    files = set(tree_bytes(dest))
    shown = [p for p in files if p.startswith(("milestones/", "tinytorch/data/"))]
    readme = " ".join((dest / "README.md").read_text(encoding="utf-8").split())
    if through != "08":
        assert shown == [], shown
        assert "## Milestones" in readme and "module 08" in readme
        return
    for ms in ("01_perceptron_1958/perceptron", "02_xor_1969/xor",
               "03_mlp_digits_1986/mlp_digits"):
        nb = load_nb(dest / "milestones" / f"{ms}.ipynb")
        assert nb == load_nb(course.root / "milestones" / f"{ms}.ipynb")
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        url = f"git+https://github.com/{TEST_SLUG}@{TEST_BRANCH}"
        assert f'"tinytorch-course @ {url}"' in cell_text(code[0]), f"{ms}: Colab cell"
        assert cell_text(code[1]).startswith("REFERENCE_ONLY = False")
    assert (dest / "tinytorch/data/digits.npz").read_bytes() == \
        (course.root / "data/digits.npz").read_bytes()
    project = tomllib.loads((dest / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["tool"]["setuptools"]["package-data"]["tinytorch"] == ["data/*"]
    guide = (dest / "milestones/README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(((?!https?:)[^)]+)\)", guide):
        assert (dest / "milestones" / target).is_file(), target
    assert "[milestones/](milestones/README.md)" in readme and "REFERENCE_ONLY" in readme


def test_the_students_own_package_survives_publishing(course: Course, tmp_path: Path) -> None:
    """mine/ (what python -m tinytorch.mine writes) is never tracked: git status stays clean,
    and the next publish neither removes it nor commits it."""
    from coursekit.publishing.publish import publish

    dest = tmp_path / "student"
    publish(course, dest, "07", log=lambda line: None)
    (dest / "mine").mkdir()
    own = {"layers.py": b"# my layers\n", "exported.json": b"{}\n"}
    for name, data in own.items():
        (dest / "mine" / name).write_bytes(data)
    assert git(dest, "status", "--porcelain").strip() == ""
    result = publish(course, dest, "08", log=lambda line: None)
    assert result.commit and not [p for p in result.written + result.removed
                                  if p.startswith("mine/")]
    assert {n: (dest / "mine" / n).read_bytes() for n in own} == own
    assert not [p for p in git(dest, "ls-files").split() if p.startswith("mine/")]
    assert git(dest, "status", "--porcelain").strip() == ""


def test_a_milestone_carrying_a_solution_is_refused(course: Course, tmp_path: Path) -> None:
    """The leak guard reads the milestone notebooks too: a line of module 08's solution in a
    milestone stops --through 08, naming the notebook."""
    import shutil

    from coursekit.authoring.milestones import build_milestones
    from coursekit.publishing.guard import TreeLeakError
    from coursekit.publishing.publish import publish

    root = tmp_path / "course"
    shutil.copytree(course.root, root)
    copy = Course(root)
    training = next(m for m in copy.modules() if m.name == "training")
    line = next(text.strip() for block in blocks(training.source_notebook, "SOLUTION")
                for text in block.splitlines()
                if len(text.strip()) > 30 and not text.strip().startswith("#"))
    source = root / "milestones/02_xor_1969/xor.py"
    source.write_text(source.read_text() + f"\n# %%\n# {line}\n")
    build_milestones(copy, log=lambda text: None)
    with pytest.raises(TreeLeakError) as err:
        publish(copy, tmp_path / "student", "08", log=lambda text: None)
    assert any(p.startswith("milestones/02_xor_1969/xor.ipynb") and "solution line of "
               "08_training" in p for p in err.value.leaks), err.value.leaks
    assert not (tmp_path / "student").exists()
