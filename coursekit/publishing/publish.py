"""``course publish DIR [--through NN]``: write the public student repository.

The instructor's repository (modules, source notebooks, hidden tests, gradebooks) stays
private; students open a second repository, which this command makes in ``DIR``:

* ``release/NN_name/name.ipynb`` for the modules 01 .. NN (``--through``, default
  ``through`` of ``[student_repository]`` in ``course.toml``), as ``course release``
  wrote them;
* the package ``tinytorch`` with the reference code of the modules before NN only; for
  NN and later modules ``tinytorch/core/<name>.py`` is a stub whose import fails and says
  that this module is the student's to write (or is not released yet). With it,
  ``tinytorch.mine`` (``python -m tinytorch.mine`` exports the code a student wrote in
  completed notebooks into ``mine/``, their own package, which git never tracks) and
  ``tinytorch.milestone`` (what the milestones run on);
* ``milestones/``: the notebooks of the milestones whose modules are all released by NN
  (each names them in its ``NEEDS``), with the data they use (``tinytorch/data/``, inside
  the package, so that Colab installs it too);
* ``binder/``, the student image, copied from the course's ``binder/`` (what students need,
  pinned, and the settings of student mode), ``pyproject.toml`` (so ``pip install -e .``
  and Colab's set-up cell install the package), ``nbgrader_config.py`` (nbgrader's
  Validate for students), a README for students with the Binder and Colab badges, a
  ``.gitignore``, and the marker file that says the folder is a student repository made
  here.

What the repository holds is defined once, by :func:`layout`: the tree written and the
paths the leak guard accepts both come from it. The whole tree is built in memory and
checked by the leak guard
(:mod:`coursekit.publishing.guard`) before anything is written. ``DIR`` is a git
repository with one commit per publish that changed something: publishing the same
course again writes nothing and makes no commit. ``publish`` refuses a folder that is not
empty and was not made by it.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import textwrap
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from coursekit.authoring.colab import colab_setup_source
from coursekit.authoring.milestones import COLAB_CELL_ID, Milestone, milestones, needs
from coursekit.authoring.student_repository import StudentRepository, read, resolve_through
from coursekit import handin
from coursekit.course import Course, CourseError, Module
from coursekit.cells import cell_source
from coursekit.publishing.badges import (
    COLAB_BADGE,
    colab_url,
    module_title,
    notebook_path,
    render_badges,
)
from coursekit.publishing.guard import guard_tree
from coursekit.publishing.open_modules import check_open_modules

#: The file that marks a folder as a student repository made by ``course publish``.
MARKER = ".course-publish.json"
#: Template of the student repository's README.
STUDENT_FILES = Path(__file__).resolve().parent / "student"
#: The student image: the files of the course's ``binder/`` that a student repository holds.
BINDER_FILES = ("requirements.txt", "runtime.txt", "postBuild", "student-mode.json")
EXECUTABLE = frozenset({"binder/postBuild"})
#: The student's own package (``tinytorch.mine``): never tracked, never touched by publish.
MINE = "mine"
GITIGNORE = (".ipynb_checkpoints/\n__pycache__/\n*.egg-info/\n.venv/\nbuild/\n"
             f"# your own package (python -m tinytorch.mine)\n/{MINE}/\n"
             "# what the milestones write (checkpoints)\nmilestones/*/output/\n")
#: Hand-written parts of the package that students get as they are (besides the modules).
PACKAGE_FILES = ("tinytorch/__init__.py", "tinytorch/mine.py", "tinytorch/milestone.py",
                 "tinytorch/submit.py")
#: How the notebooks are handed in (the grading service's address), written from course.toml.
HANDIN_FILE = "tinytorch/handin.py"
#: The data the milestones use: course file -> path in the student repository.
DATA_FILES = {"data/digits.npz": "tinytorch/data/digits.npz",
              "data/README.md": "tinytorch/data/README.md"}
#: Files of the student repository that are not text.
BINARY = frozenset({"tinytorch/data/digits.npz"})
#: Packages ``tinytorch.mine`` needs beyond the course's own (Colab installs them).
STUDENT_DEPENDENCIES = ("nbclient>=0.10", "nbformat>=5.10")
#: Used for the commit when git has no user configured (a fresh CI machine).
FALLBACK_AUTHOR = ("course publish", "course-publish@localhost")


@dataclass(frozen=True)
class Plan:
    """What a student repository released through module ``through`` holds."""

    through: Module
    notebooks: list[Module]  # 01 .. through: release notebooks
    package: list[Module]  # 01 .. through-1: reference code in tinytorch/core/
    stubs: list[Module]  # through and later: an import that fails and says why
    milestones: list[Milestone] = field(default_factory=list)  # every module they need released

    @classmethod
    def of(cls, course: Course, through: Module) -> Plan:
        modules = course.modules()
        return cls(
            through=through,
            notebooks=[m for m in modules if m.number <= through.number],
            package=[m for m in modules if m.number < through.number],
            stubs=[m for m in modules if m.number >= through.number],
            milestones=[ms for ms in milestones(course)
                        if all(m.number <= through.number for m in needs(course, ms))],
        )


@dataclass
class Published:
    """What ``publish`` did."""

    dest: Path
    through: Module
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    commit: str | None = None  # the new commit, None when nothing changed (or no git)


# -- the tree ---------------------------------------------------------------------------------


def _span(modules: list[Module]) -> str:
    """``01-07``, ``01`` or ``none`` for a run of modules."""
    if not modules:
        return "none"
    if len(modules) == 1:
        return modules[0].number
    return f"{modules[0].number}-{modules[-1].number}"


def modules_phrase(modules: list[Module]) -> str:
    """``modules 01-07``, ``module 01`` or ``no module`` for a run of modules."""
    if not modules:
        return "no module"
    return f"module{'s' if len(modules) > 1 else ''} {_span(modules)}"


def export_banner(module: Module) -> str:
    """The header ``course build`` writes at the top of ``tinytorch/core/<name>.py``."""
    return (f'"""Generated from {module.rel_source} by `course build`; do not edit.\n\n'
            f"Change the module file and run `course build --module {module.number}`.\n"
            '"""\n')


def package_file(module: Module) -> bytes:
    """The reference code of ``module`` as students get it (with a header of their own)."""
    rel = f"tinytorch/core/{module.name}.py"
    try:
        text = module.export.read_text(encoding="utf-8")
    except OSError as exc:
        raise CourseError(f"{rel}: cannot read it ({exc}); run `course build`") from exc
    banner = export_banner(module)
    if not text.startswith(banner):
        raise CourseError(f"{rel}: does not start with the header `course build` writes; "
                          f"run `course build --module {module.number}`")
    header = (f'"""Module {module.number} ({module_title(module)}): the reference '
              "implementation that later notebooks import.\n\n"
              "Published with the course; the next update of this repository replaces it.\n"
              '"""\n')
    return (header + text[len(banner):]).encode("utf-8")


def stub_file(module: Module, plan: Plan) -> bytes:
    """``tinytorch/core/<name>.py`` of a module that is not in the package: its import fails
    with a message that says why."""
    dotted = f"tinytorch.core.{module.name}"
    title = module_title(module)
    have = modules_phrase(plan.package) if plan.package else "no module yet"
    if module == plan.through:
        why = (f"{dotted} is module {module.number} ({title}), which you write yourself in "
               f"{notebook_path(module)}: define its classes and functions in that notebook "
               f"instead of importing them. The tinytorch package holds {have}.")
    else:
        why = (f"{dotted} is module {module.number} ({title}), which is not released yet; "
               f"it comes with a later update of the course. The tinytorch package holds "
               f"{have}.")
    doc = textwrap.fill(why, width=88)
    return (f'"""{doc}\n"""\n\nraise ModuleNotFoundError(\n    {json.dumps(why)},\n'
            f'    name="{dotted}",\n)\n').encode()


def _pyproject(course: Course, plan: Plan) -> bytes:
    path = course.root / "pyproject.toml"
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CourseError(f"{path}: cannot read the course's pyproject.toml: {exc}") from exc
    version = project.get("version", "0")
    requires = project.get("requires-python", ">=3.11")
    deps = ", ".join(json.dumps(d) for d in [*project.get("dependencies", []),
                                              *STUDENT_DEPENDENCIES])
    return (
        "# The course's package, installed by `pip install -e .` (Binder's postBuild) and by\n"
        "# the Colab set-up cell of every notebook. Published with the course.\n"
        "[build-system]\n"
        'requires = ["setuptools>=68"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        "[project]\n"
        'name = "tinytorch-course"\n'
        f"version = {json.dumps(version)}\n"
        f'description = "tinytorch, the course\'s framework: {modules_phrase(plan.package)}"\n'
        f"requires-python = {json.dumps(requires)}\n"
        f"dependencies = [{deps}]\n\n"
        "[tool.setuptools.packages.find]\n"
        'include = ["tinytorch*"]\n\n'
        "[tool.setuptools.package-data]\n"
        "# the data of the milestones, so that Colab's install carries it too\n"
        'tinytorch = ["data/*"]\n'
    ).encode()


def _course_file(course: Course, rel: str) -> bytes:
    try:
        return (course.root / rel).read_bytes()
    except OSError as exc:
        raise CourseError(f"{rel}: cannot read it for the student repository ({exc})") from exc


def _core_init(course: Course, plan: Plan) -> bytes:
    """``tinytorch/core/__init__.py``: what the package holds, and the list of the course's
    modules ``tinytorch.mine`` reads."""
    if plan.package:
        listing = "\n".join(f"- ``tinytorch.core.{m.name}`` (module {m.number})"
                            for m in plan.package)
        body = (f"The reference code of {modules_phrase(plan.package)}, which the notebooks "
                f"in release/ import:\n\n{listing}\n")
    else:
        body = "No reference code yet: module 01 starts from NumPy alone.\n"
    def quoted(modules: list[Module]) -> str:
        return "".join(f"\n    {json.dumps(m.folder)}," for m in modules) + "\n"

    return (f'"""{body}\n'
            f"Module {plan.through.number} is yours to write, in its notebook: importing "
            f"``tinytorch.core.{plan.through.name}``\n"
            "(or a later module) fails with a message that says where. Your own modules, "
            "exported\nfrom your notebooks by ``python -m tinytorch.mine``, are in mine/.\n"
            '"""\n\n'
            f"#: Every module of the course, in order.\nMODULES = ({quoted(course.modules())})\n"
            f"#: The modules whose reference code this package holds.\n"
            f"PUBLISHED = ({quoted(plan.package)})\n").encode()


def _handin(course: Course, repo: StudentRepository) -> bytes:
    """``tinytorch/handin.py``: where the Submit cell of every notebook sends it (``[service]
    url`` of course.toml), or what it says when the course collects notebooks another way."""
    service = handin.read(course)
    return ('"""How this course\'s notebooks are handed in: read by ``tinytorch.submit`` (the '
            "Submit cell at\nthe end of every notebook). Published with the course, from its "
            'settings."""\n\n'
            f"#: The student repository of the course.\nCOURSE = {json.dumps(repo.slug)}\n"
            "#: The course's grading service (None: the course collects notebooks another "
            f"way).\nSERVICE_URL = {json.dumps(service.url) if service.url else 'None'}\n"
            "#: What the Submit cell says when there is no grading service.\n"
            f"HAND_IN = {json.dumps(service.hand_in)}\n").encode()


def _service_bullet(course: Course) -> str:
    """The README's way of handing in through the grading service (empty without one)."""
    url = handin.read(course).url
    if not url:
        return ""
    text = ("- **With the Submit cell** (this course's grading service, " + url + "): run the "
            "last cell of the notebook, *Submit for grading*. It saves the notebook, sends it "
            "and shows within seconds your score, every failed test with its message and a "
            "link to the feedback page. The first time it asks for the token your course "
            "gave you and keeps it in your home folder (`~/.tinytorch`), never in the "
            "notebook. You may submit again, a limited number of times an hour. In a "
            "terminal: `python -m tinytorch.submit release/NN_name/name.ipynb`.")
    return "\n" + textwrap.fill(text, width=88, subsequent_indent="  ")


def _readme(course: Course, repo: StudentRepository, plan: Plan,
            allow_placeholder: bool) -> bytes:
    template = string.Template((STUDENT_FILES / "README.md").read_text(encoding="utf-8"))
    rows = []
    for m in plan.notebooks:
        path = notebook_path(m)
        now = " (current)" if m == plan.through else ""
        rows.append(f"| {m.number} {module_title(m)}{now} | [{path}]({path}) |")
    imports = (f"`from tinytorch.core.{plan.package[0].name} import ...`" if plan.package
               else "")
    if plan.package:
        note = (f"The notebooks import the earlier modules from the course's package "
                f"`tinytorch` ({modules_phrase(plan.package)}, the reference code), for example "
                f"{imports}, so each notebook stands on its own. The module you are working "
                f"on is not in it: you write it in its notebook, and "
                f"`import tinytorch.core.{plan.through.name}` fails and says so.")
    else:
        note = ("Module 01 starts from NumPy alone; later notebooks import the earlier "
                "modules from the course's package `tinytorch`.")
    text = template.substitute(
        badges=render_badges(course, repo, plan.through, allow_placeholder=allow_placeholder),
        module_table="\n".join(rows),
        package_note=textwrap.fill(note, width=88),
        slug=repo.slug,
        repo_name=repo.slug.split("/", 1)[1],
        handin_example=f"`{plan.through.notebook_name}` for module {plan.through.number}",
        service_bullet=_service_bullet(course),
        milestones_section=_milestones_section(course, plan),
        milestones_row=("\n| `milestones/` | the milestones: history recreated with your "
                        "framework |" if plan.milestones else ""),
    )
    return text.encode("utf-8")


def milestone_title(milestone: Milestone) -> str:
    """A milestone's title from its first heading (``# Milestone 2: XOR ... (1969)``)."""
    for line in milestone.source.read_text(encoding="utf-8").splitlines():
        text = line.removeprefix("#").strip()
        if text.startswith("# "):
            title = text[2:].strip()
            return title.split(":", 1)[1].strip() if ":" in title else title
    return milestone.folder[3:].replace("_", " ")


def _milestones_section(course: Course, plan: Plan) -> str:
    if plan.milestones:
        names = "; ".join(milestone_title(ms) for ms in plan.milestones)
        text = (f"## Milestones\n\n[milestones/](milestones/README.md) puts your framework "
                f"to work on results from the history of neural networks: {names}. Each "
                "runs on your modules where `mine/` has them and on the reference code for "
                "the others, and says at the top which is which (`REFERENCE_ONLY = True` runs "
                "the reference code alone). Where your code raises or trains badly, the "
                "milestone names the module at fault.")
    else:
        later = [max(needs(course, ms), key=lambda m: m.number).number
                 for ms in milestones(course)]
        if not later:
            return ""
        text = ("## Milestones\n\nOnce the modules they need are released (module "
                f"{min(later)} for the first), milestones in `milestones/` put your framework "
                "to work on results from the history of neural networks, on your own modules.")
    head, body = text.split("\n\n", 1)
    return head + "\n\n" + textwrap.fill(body, width=88)


def _milestones_readme(course: Course, repo: StudentRepository, plan: Plan) -> bytes:
    template = string.Template((STUDENT_FILES / "milestones.md").read_text(encoding="utf-8"))
    rows = []
    for ms in plan.milestones:
        rel = ms.rel_notebook
        label = milestone_title(ms)
        rows.append(f"| {ms.folder[:2]} | {label} | [{ms.notebook.name}]"
                    f"({ms.folder}/{ms.notebook.name}) | [![Open in Colab]({COLAB_BADGE})]"
                    f"({colab_url(repo, rel)}) |")
    return template.substitute(table="\n".join(rows)).encode("utf-8")


def _milestone_notebook(milestone: Milestone, repo: StudentRepository) -> bytes:
    try:
        data = milestone.notebook.read_bytes()
        nb = json.loads(data)
    except (OSError, json.JSONDecodeError) as exc:
        raise CourseError(f"{milestone.rel_notebook}: cannot read it ({exc}); run "
                          "`course build`") from exc
    colab = [c for c in nb.get("cells", []) if c.get("id") == COLAB_CELL_ID]
    if not colab or cell_source(colab[0]) != colab_setup_source(repo.slug, repo.branch):
        raise CourseError(
            f"{milestone.rel_notebook}: its Colab set-up cell does not install the package "
            f"from {repo.slug}@{repo.branch} (course.toml); run `course build` after changing "
            "[student_repository]")
    return data


def _release_notebook(module: Module, repo: StudentRepository) -> bytes:
    rel = notebook_path(module)
    try:
        data = module.release_notebook.read_bytes()
        nb = json.loads(data)
    except (OSError, json.JSONDecodeError) as exc:
        raise CourseError(f"{rel}: cannot read it ({exc}); run `course release`") from exc
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if not code or cell_source(code[0]) != colab_setup_source(repo.slug, repo.branch):
        raise CourseError(
            f"{rel}: its Colab set-up cell does not install the package from "
            f"{repo.slug}@{repo.branch} (course.toml); run `course build && course release` "
            "after changing [student_repository]")
    return data


def _nbgrader_config(course: Course) -> bytes:
    """nbgrader's configuration for students: Validate (in JupyterLab, or ``nbgrader
    validate``) reads ``nbgrader_config.py`` in the folder it runs in, and without one
    prints "No nbgrader_config.py file found". It holds the grader's execution limits, so
    that Validate times a notebook out where grading would; nothing else of the course's
    configuration (no paths, no gradebook)."""
    from coursekit import nbg

    execute = nbg.load_config(course).Execute
    settings = {"timeout": execute.get("timeout", 30),
                "interrupt_on_timeout": execute.get("interrupt_on_timeout", True)}
    for key, value in settings.items():
        if not isinstance(value, (bool, int)):
            raise CourseError(f"{course.config_file.name}: c.Execute.{key} = {value!r}: "
                              "expected a number (seconds) or True/False")
    lines = [
        '"""nbgrader\'s settings for students. Validate (the button in JupyterLab, or',
        "`nbgrader validate NOTEBOOK`) reads this file in the folder it runs in: run it from",
        "the root of this repository. The execution limits are the grader's, so a notebook",
        'that times out here times out when it is graded too. Published with the course."""',
        "",
        "c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)",
        "",
        f"c.Execute.timeout = {settings['timeout']!r}  # seconds per cell",
        f"c.Execute.interrupt_on_timeout = {settings['interrupt_on_timeout']!r}",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _binder_file(course: Course, name: str) -> Callable[[], bytes]:
    def read_it() -> bytes:
        path = course.root / "binder" / name
        try:
            return path.read_bytes()
        except OSError as exc:
            raise CourseError(f"binder/{name}: cannot read the student image's file "
                              f"({exc}); the course's binder/ holds "
                              f"{', '.join(BINDER_FILES)}") from exc
    return read_it


def _marker(repo: StudentRepository, plan: Plan) -> bytes:
    return (json.dumps({
        "made_by": "course publish",
        "slug": repo.slug,
        "branch": repo.branch,
        "through": plan.through.folder,
        "notebooks": [m.folder for m in plan.notebooks],
        "package": [m.folder for m in plan.package],
        "milestones": [ms.folder for ms in plan.milestones],
    }, indent=2) + "\n").encode("utf-8")


def layout(course: Course, repo: StudentRepository, plan: Plan,
           allow_placeholder: bool = False) -> dict[str, Callable[[], bytes]]:
    """What the student repository is made of: every path, and how its content is made.

    The one definition of the student repository: :func:`student_tree` writes these files
    and nothing else, and the leak guard accepts no other path.
    """
    parts: dict[str, Callable[[], bytes]] = {}
    for name in BINDER_FILES:
        parts[f"binder/{name}"] = _binder_file(course, name)
    for m in plan.notebooks:
        parts[notebook_path(m)] = lambda m=m: _release_notebook(m, repo)
    for m in plan.package:
        parts[f"tinytorch/core/{m.name}.py"] = lambda m=m: package_file(m)
    for m in plan.stubs:
        parts[f"tinytorch/core/{m.name}.py"] = lambda m=m: stub_file(m, plan)
    for rel in PACKAGE_FILES:
        parts[rel] = lambda rel=rel: _course_file(course, rel)
    parts["tinytorch/core/__init__.py"] = lambda: _core_init(course, plan)
    parts[HANDIN_FILE] = lambda: _handin(course, repo)
    if plan.milestones:
        parts["milestones/README.md"] = lambda: _milestones_readme(course, repo, plan)
        for ms in plan.milestones:
            parts[ms.rel_notebook] = lambda ms=ms: _milestone_notebook(ms, repo)
        for source, rel in DATA_FILES.items():
            parts[rel] = lambda source=source: _course_file(course, source)
    parts["pyproject.toml"] = lambda: _pyproject(course, plan)
    parts["nbgrader_config.py"] = lambda: _nbgrader_config(course)
    parts["README.md"] = lambda: _readme(course, repo, plan, allow_placeholder)
    parts[".gitignore"] = lambda: GITIGNORE.encode("utf-8")
    parts[MARKER] = lambda: _marker(repo, plan)
    return parts


def binary_files(course: Course) -> dict[str, bytes]:
    """The student repository's files that are not text, with the bytes each must be (those
    the course has: a course without milestones has no data)."""
    out = {}
    for source, rel in DATA_FILES.items():
        if rel in BINARY and (course.root / source).is_file():
            out[rel] = _course_file(course, source)
    return out


def student_tree(course: Course, repo: StudentRepository, plan: Plan,
                 allow_placeholder: bool = False) -> dict[str, bytes]:
    """Every file of the student repository, path -> content (nothing is written)."""
    return {path: make() for path, make in
            layout(course, repo, plan, allow_placeholder=allow_placeholder).items()}


def guard_releases(course: Course) -> dict[str, list[str]]:
    """The student repository as it would be published through each module, checked by the
    leak guard in memory (``course check``): module folder -> its problems (empty: clean).
    Nothing is written; a placeholder slug is allowed."""
    from coursekit.publishing.guard import check_tree, tree_secrets

    repo = read(course)
    found: dict[str, list[str]] = {}
    for module in course.modules():
        plan = Plan.of(course, module)
        try:
            files = student_tree(course, repo, plan, allow_placeholder=True)
        except CourseError as exc:
            found[module.folder] = [str(exc)]
            continue
        found[module.folder] = check_tree(
            files, set(layout(course, repo, plan, allow_placeholder=True)),
            tree_secrets(course, module), binary_files(course))
    return found


# -- the folder -------------------------------------------------------------------------------


def _git(dest: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(["git", "-C", str(dest), *args], capture_output=True, text=True,
                              timeout=120, check=False)
    except FileNotFoundError as exc:
        raise CourseError("git not found: `course publish` makes a git repository; "
                          "install git") from exc
    if check and proc.returncode != 0:
        raise CourseError(f"git {' '.join(args)} in {dest} failed: "
                          f"{(proc.stderr or proc.stdout).strip()}")
    return proc


def is_student_repository(dest: Path) -> bool:
    """True when ``dest`` holds the marker file of a student repository made by publish."""
    try:
        marker = json.loads((dest / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(marker, dict) and marker.get("made_by") == "course publish"


def check_destination(dest: Path, repo: StudentRepository, use_git: bool) -> None:
    """Refuse ``dest`` unless it is absent, empty (a ``.git`` alone counts as empty: a fresh
    clone of an empty repository), or a student repository made by ``course publish`` on
    the branch of ``course.toml``. Writes nothing."""
    if dest.exists() and not dest.is_dir():
        raise CourseError(f"{dest}: exists and is not a folder")
    if not dest.exists():
        return
    others = sorted(p.name for p in dest.iterdir() if p.name != ".git")
    if others and not is_student_repository(dest):
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise CourseError(
            f"{dest}: not empty ({shown}) and not a student repository made by "
            f"`course publish` (no {MARKER}); give a new or empty folder, or a clone of "
            "the student repository")
    if use_git and (dest / ".git").exists():
        head = _git(dest, "symbolic-ref", "--short", "-q", "HEAD", check=False).stdout.strip()
        born = _git(dest, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode == 0
        if born and head != repo.branch:
            raise CourseError(
                f"{dest}: the git repository is on {head or 'a detached HEAD'!r}, but "
                f"course.toml's [student_repository] branch is {repo.branch!r}; "
                f"run `git -C {dest} switch {repo.branch}` first")


def _present(dest: Path, use_git: bool) -> list[str]:
    """Files of ``dest`` the tree owns: with git, the tracked and not-ignored ones."""
    if use_git:
        out = _git(dest, "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
        return sorted({p for p in out.split("\0") if p})
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")
                  if p.is_file() and not {".git", MINE, "__pycache__", ".ipynb_checkpoints"}
                  & set(p.relative_to(dest).parts))


def write_tree(dest: Path, files: dict[str, bytes], use_git: bool,
               branch: str) -> tuple[list[str], list[str]]:
    """Make ``dest`` hold exactly ``files``; return (written, removed) paths."""
    dest.mkdir(parents=True, exist_ok=True)
    if use_git and not (dest / ".git").exists():
        _git(dest, "init", "-q")
    if use_git and _git(dest, "rev-parse", "--verify", "-q", "HEAD",
                        check=False).returncode != 0:
        _git(dest, "symbolic-ref", "HEAD", f"refs/heads/{branch}")  # unborn: name it
    written, removed = [], []
    for rel in sorted(set(_present(dest, use_git)) - set(files)):
        (dest / rel).unlink(missing_ok=True)
        removed.append(rel)
    for rel, data in sorted(files.items()):
        target = dest / rel
        mode = 0o755 if rel in EXECUTABLE else 0o644
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        if target.is_symlink() or (target.exists() and target.read_bytes() != data):
            target.unlink()
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.publish-tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            written.append(rel)
        if target.stat().st_mode & 0o777 != mode:
            target.chmod(mode)
            if rel not in written:
                written.append(rel)
    for folder in sorted((p for p in dest.rglob("*") if p.is_dir()), reverse=True):
        if not {".git", MINE} & set(folder.relative_to(dest).parts) \
                and not any(folder.iterdir()):
            folder.rmdir()
    return written, removed


def commit(dest: Path, message: str) -> str | None:
    """Commit everything in ``dest``; the new commit's hash, or None when nothing changed."""
    _git(dest, "add", "-A")
    if not _git(dest, "status", "--porcelain").stdout.strip():
        return None
    who: list[str] = []
    if not _git(dest, "config", "user.email", check=False).stdout.strip():
        who = ["-c", f"user.name={FALLBACK_AUTHOR[0]}", "-c", f"user.email={FALLBACK_AUTHOR[1]}"]
    _git(dest, *who, "commit", "-q", "--no-verify", "-m", message)
    return _git(dest, "rev-parse", "HEAD").stdout.strip()


def publish(course: Course, dest: Path, through: str | None = None, *,
            repo: StudentRepository | None = None, preview: bool = False,
            force: bool = False, now: datetime | None = None,
            log: Callable[[str], None] = print) -> Published:
    """Write the student repository into ``dest`` (see the module's docstring).

    ``through`` (a module number or name) overrides ``course.toml``; ``repo`` overrides its
    ``[student_repository]`` table. A ``preview`` (``course lab``) is the same tree, checked
    the same way, without git, and allowed with a placeholder slug and inside the course.
    A module whose reference code would go out while it still takes submissions stops the
    publish (:mod:`coursekit.publishing.open_modules`; ``now`` is naive UTC) unless
    ``force``, which the commit message then records.
    """
    repo = repo or read(course)
    use_git = not preview
    if not preview:
        repo.require_real("`course publish`")
    module = (resolve_through(course, through) if through is not None
              else repo.through_module(course))
    plan = Plan.of(course, module)
    forced = "" if preview else check_open_modules(course, plan.package, force=force, now=now,
                                                   log=log)
    dest = Path(dest).resolve()
    if not preview and (dest == course.root or course.root in dest.parents):
        raise CourseError(f"{dest}: inside the instructor's course root {course.root}; "
                          "publish into a folder of its own")
    check_destination(dest, repo, use_git)
    log(f"publish: student repository of {repo.slug}@{repo.branch}: notebooks "
        f"{_span(plan.notebooks)}, package {_span(plan.package)} -> {dest}")
    files = student_tree(course, repo, plan, allow_placeholder=preview)
    looked_for = guard_tree(files, set(layout(course, repo, plan, preview)), course, module,
                            binary=binary_files(course))
    log(f"publish: leak guard: {len(files)} files clean ({looked_for} solution and "
        "hidden-test lines looked for)")
    written, removed = write_tree(dest, files, use_git, repo.branch)
    result = Published(dest, module, written, removed)
    if use_git:
        result.commit = commit(dest, f"Publish {modules_phrase(plan.notebooks)} "
                               f"(package {_span(plan.package)})"
                               + (f"\n\n{forced}" if forced else ""))
    if result.commit:
        log(f"publish: {len(written)} file(s) written, {len(removed)} removed; "
            f"commit {result.commit[:12]}")
        log(f"publish: push it to GitHub: git -C {dest} push "
            f"https://github.com/{repo.slug}.git {repo.branch}")
    elif written or removed:
        same = "; the same tree as the last commit, no commit" if use_git else ""
        log(f"publish: {len(written)} file(s) written, {len(removed)} removed{same}")
    else:
        log(f"publish: {dest} already up to date; nothing written, no commit")
    return result


def marker_of(dest: Path) -> dict[str, Any]:
    """The marker of a student repository (raises CourseError when ``dest`` is not one)."""
    if not is_student_repository(dest):
        raise CourseError(f"{dest}: not a student repository made by `course publish` "
                          f"(no {MARKER})")
    return json.loads((dest / MARKER).read_text(encoding="utf-8"))
