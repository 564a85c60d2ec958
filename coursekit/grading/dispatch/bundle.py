"""The grading bundle: everything a grading worker needs, and nothing of the students'.

Every grading worker, a local worker process or one on a Dask cluster, grades from a folder
laid out as a course root, made from the course by :func:`write_bundle`:

* ``manifest.json``: the course's modules (all of them, in order: module N is graded with
  the reference package of 01..N-1) and those being graded;
* ``grader_config.py`` and ``course.toml``: the nbgrader configuration and the late policy;
* ``source_notebooks/NN_name/name.ipynb`` of the modules being graded;
* ``tinytorch/``: the reference package (the sandbox takes modules 01..N-1 of it);
* ``coursekit/``: this package, so that a worker runs the instructor's grading code
  whatever is installed on its machine;
* ``gradebook.db``: the assignments and their due dates, without any student
  (:func:`coursekit.grading.records.gradebook.make_template`).

No submission, grade or student name is in it. On a cluster it travels as one tar archive
(:func:`pack`) named by its SHA-256 (:func:`digest`), which each worker checks on arrival
(:func:`coursekit.grading.dispatch.station.unpack`). A worker opens the folder with
:class:`BundledCourse`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

from coursekit import settings
from coursekit.course import CONFIG_FILE, Course, CourseError, Module
from coursekit.grading.records import deadlines
from coursekit.settings import SETTINGS_FILE

MANIFEST = "manifest.json"
GRADEBOOK = "gradebook.db"
PACKAGE = Path(__file__).resolve().parents[2]  # the coursekit folder
SKIP = {"__pycache__", ".ipynb_checkpoints"}


class BundledCourse(Course):
    """A course root made from a grading bundle: its modules come from the manifest (the
    bundle has no module sources, only the source notebooks of the modules graded)."""

    def __init__(self, root: Path | str) -> None:
        root = Path(root).resolve()
        try:
            manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
            self._folders = [str(f) for f in manifest["modules"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CourseError(f"{root}: not a grading bundle ({MANIFEST}: {exc})") from None
        (root / "modules").mkdir(exist_ok=True)
        super().__init__(root)

    def modules(self) -> list[Module]:
        """Every module of the course the bundle was made from, in order."""
        out = []
        for folder in self._folders:
            number, _, name = folder.partition("_")
            out.append(Module(number, name, self.root))
        return out

    def missing_files(self) -> list[str]:
        return []


def _files(course: Course, modules: list[Module]) -> dict[str, Path]:
    """Bundle path -> file of the course, for everything but the gradebook."""
    files: dict[str, Path] = {CONFIG_FILE: course.config_file}
    settings = course.root / SETTINGS_FILE
    if settings.is_file():
        files[SETTINGS_FILE] = settings
    for module in modules:
        if not module.source_notebook.is_file():
            raise CourseError(f"source_notebooks/{module.folder}/{module.notebook_name}: "
                              f"missing; run `course build --module {module.number}` first")
        files[f"source_notebooks/{module.folder}/{module.notebook_name}"] = module.source_notebook
    for top, folder in (("tinytorch", course.root / "tinytorch"), ("coursekit", PACKAGE)):
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if path.is_file() and not SKIP.intersection(rel.parts) and path.suffix != ".pyc":
                files[f"{top}/{rel.as_posix()}"] = path
    return files


def write_bundle(course: Course, modules: list[Module], dest: Path) -> Path:
    """Write the bundle for grading ``modules`` into ``dest`` (without its gradebook, which
    :func:`add_gradebook` puts in once the grading root is ready).

    Files that are already there with the same content are left alone (their modification
    times stay, so Python's compiled files of the package stay valid); others are removed.
    """
    dest.mkdir(parents=True, exist_ok=True)
    wanted = _files(course, modules)
    manifest = json.dumps({"modules": [m.folder for m in course.modules()],
                           "graded": [m.folder for m in modules]}, indent=1).encode()
    contents = {rel: src.read_bytes() for rel, src in wanted.items()}
    contents[MANIFEST] = manifest
    for rel, data in contents.items():
        path = dest / rel
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    for path in sorted(dest.rglob("*"), reverse=True):
        rel = path.relative_to(dest).as_posix()
        if SKIP.intersection(path.relative_to(dest).parts) or rel in ("modules", GRADEBOOK):
            continue
        if path.is_file() and rel not in contents:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    (dest / "modules").mkdir(exist_ok=True)
    return dest


def add_gradebook(bundle: Path, template: Path) -> None:
    """Put the template gradebook (assignments, due dates, no student) into the bundle."""
    tmp = bundle / (GRADEBOOK + ".tmp")
    shutil.copyfile(template, tmp)
    os.replace(tmp, bundle / GRADEBOOK)


def pack(bundle: Path) -> bytes:
    """The bundle as a gzipped tar archive: the same files give the same bytes (names
    sorted, times, owners and modes fixed), so its digest names its content."""
    if not (bundle / GRADEBOOK).is_file():
        raise CourseError(f"{bundle}: the grading bundle has no {GRADEBOOK} yet")
    buf = io.BytesIO()
    # gzip's header would carry the time: mtime=0 keeps the bytes the same
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(bundle.rglob("*")):
                rel = path.relative_to(bundle)
                if SKIP.intersection(rel.parts) or not path.is_file():
                    continue
                data = path.read_bytes()
                info = tarfile.TarInfo(rel.as_posix())
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if not SKIP.intersection(p.parts))


def grader_digest(course: Course, module: Module, options: dict[str, object]) -> str:
    """The SHA-256 of everything a grade of ``module`` depends on besides the submission:
    its source notebook, ``grader_config.py``, its due date and the late policy
    (``course.toml``'s other settings do not count), the reference package of the modules
    before it, the course package's code and the grading ``options`` (limits, sandbox,
    feedback). A submission graded under the same digest would be graded the same way
    again."""
    h = hashlib.sha256()

    def add(name: str, data: bytes) -> None:
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)

    add("source notebook", module.source_notebook.read_bytes())
    add(CONFIG_FILE, course.config_file.read_bytes())
    due = deadlines.due_dates(course).get(module.folder)
    add("due date and late policy", json.dumps(
        {"due": due.isoformat() if due else None, "late": settings.table(course, "late")},
        sort_keys=True, default=str).encode())
    for init in ("__init__.py", "core/__init__.py"):
        path = course.root / "tinytorch" / init
        add(f"tinytorch/{init}", path.read_bytes() if path.is_file() else b"")
    for earlier in course.modules():
        if earlier.number < module.number and earlier.export.is_file():
            add(earlier.export.name, earlier.export.read_bytes())
    for path in _package_files():
        add(path.relative_to(PACKAGE).as_posix(), path.read_bytes())
    add("options", json.dumps(options, sort_keys=True, default=str).encode())
    return h.hexdigest()


def submission_digest(grader: str, notebook: bytes | None, timestamp: bytes | None) -> str:
    """The fingerprint of one grading: the grader's digest, the submitted bytes (None: no
    file) and its submission time."""
    h = hashlib.sha256(grader.encode())
    for part in (notebook, timestamp):
        h.update(b"-" if part is None else b"+" + len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def digest(data: bytes) -> str:
    """The SHA-256 of a packed bundle, in hex: its name on the workers."""
    return hashlib.sha256(data).hexdigest()
