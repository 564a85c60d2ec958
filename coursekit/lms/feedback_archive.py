"""``course feedback --zip``: the feedback pages of ``course grade`` bundled for returning.

``course grade`` writes ``<grading root>/feedback/<student>/<NN_name>/<name>.html`` (hidden
tests not shown). The layouts:

* ``student`` (default): one archive per student, ``<student>.zip``, holding
  ``<NN_name>/<name>.html`` for every module with feedback: to mail or hand out.
* ``canvas``: one archive per module, ``<NN_name>-canvas.zip``, each page named with the
  prefix the student's file had in the Canvas download (``<name>_<user id>_<submission
  id>_``), as Canvas's bulk upload of feedback files expects.
* ``moodle``: one archive per module, ``<NN_name>-moodle.zip``, each page in the folder the
  Moodle download used for the student (``<Full Name>_<participant id>_
  assignsubmission_file_/``): Moodle's "Upload multiple feedback files in a zip" matches
  the participant id in that name (``assignfeedback_file`` zip importer).

The LMS layouts need the LMS's names, which ``course collect`` keeps next to each notebook
(``lms.json``): give its output folder with ``--submissions``. Only pages of notebooks that
were graded are bundled; nothing from the gradebook, the hidden tests or other students
goes into a student's archive.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

from coursekit.course import CourseError
from coursekit.grading.grade import writable_folder

LAYOUTS = ("student", "canvas", "moodle")


def feedback_pages(grading_root: Path) -> dict[str, list[Path]]:
    """Student -> their feedback pages (``feedback/<student>/<NN_name>/<name>.html``)."""
    base = grading_root / "feedback"
    if not base.is_dir():
        raise CourseError(f"--grading {grading_root}: no feedback/ folder (run `course grade` "
                          "without --no-feedback first)")
    pages: dict[str, list[Path]] = {}
    for page in sorted(base.glob("*/*/*.html")):
        pages.setdefault(page.parts[-3], []).append(page)
    if not pages:
        raise CourseError(f"--grading {grading_root}: no feedback pages in feedback/")
    return pages


def bundle(grading_root: Path, out: Path, layout: str = "student",
           submissions: Path | None = None, log: Callable[[str], None] = print) -> list[Path]:
    """Write the feedback archives of ``layout`` into ``out``; the archives written."""
    if layout not in LAYOUTS:
        raise CourseError(f"--layout {layout}: expected one of {', '.join(LAYOUTS)}")
    if layout != "student" and submissions is None:
        raise CourseError(f"--layout {layout} needs --submissions DIR, the folder `course "
                          "collect` wrote (it keeps the LMS's file names)")
    if submissions is not None and not submissions.is_dir():
        raise CourseError(f"--submissions {submissions}: not a folder")
    pages = feedback_pages(grading_root)
    out = writable_folder(out, "--out")
    written: list[Path] = []
    if layout == "student":
        for student, files in pages.items():
            archive = out / f"{student}.zip"
            _zip(archive, {f"{p.parts[-2]}/{p.name}": p for p in files})
            written.append(archive)
        log(f"feedback: {len(written)} archive(s), one per student, in {out}")
        return written
    assert submissions is not None
    by_module: dict[str, dict[str, Path]] = {}
    unnamed: list[str] = []
    for student, files in pages.items():
        for page in files:
            module = page.parts[-2]
            info = _lms_names(submissions / student / module / "lms.json")
            if info is None or info.get("lms") != layout:
                unnamed.append(f"{student}/{module}")
                continue
            if layout == "canvas":
                name = f"{info['prefix']}{page.name}"
            else:
                # the download's folder (or flat prefix), always as a folder here
                name = f"{info['prefix'].rstrip('/').rstrip('_')}_/{page.name}"
            by_module.setdefault(module, {})[name] = page
    for module, files in sorted(by_module.items()):
        archive = out / f"{module}-{layout}.zip"
        _zip(archive, files)
        written.append(archive)
        log(f"feedback: {archive} ({len(files)} page(s), {layout} upload layout)")
    if unnamed:
        log(f"feedback: {len(unnamed)} page(s) left out, with no {layout} name from `course "
            f"collect` in {submissions}: {', '.join(unnamed[:10])}")
    if not written:
        raise CourseError(f"--submissions {submissions}: no {layout} names found "
                          "(lms.json files written by `course collect`)")
    return written


def _lms_names(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and {"lms", "prefix", "filename"} <= set(data) \
        else None


def _zip(archive: Path, files: dict[str, Path]) -> None:
    tmp = archive.with_name(archive.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, path in sorted(files.items()):
            zf.write(path, name)
    tmp.replace(archive)
