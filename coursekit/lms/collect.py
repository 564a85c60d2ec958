"""``course collect``: an LMS bulk download -> ``DIR/<student>/<NN_name>/<name>.ipynb``.

The two layouts, as the LMSs write them:

* **Canvas** (Assignments, Download Submissions): a flat zip of
  ``<name>_<user id>_<attachment id>_<file name>``, with ``late_`` before the user id of a
  late submission and no ``<name>`` under anonymous grading. ``<name>`` is the student's
  sortable name ("Last, First") without non-word characters, in lower case; ``<user id>``
  Canvas's numeric user id (the ``ID`` column of its gradebook export). The names are made
  by ``ContentZipper#get_filename`` and ``#add_upload_submission`` in Canvas's
  ``lib/content_zipper.rb``; Canvas reads the ``_<id>_`` parts back when feedback files are
  uploaded in bulk. A file uploaded again under the same name is shown as ``-1``,
  ``-2`` before its extension, a browser's second download as `` (1)``.
* **Moodle** (Assignment, View all submissions, Download all submissions): each file as
  ``<Full Name>_<participant id>_assignsubmission_file_/<file name>`` (in folders, the
  default since Moodle 3.1) or ``<Full Name>_<participant id>_assignsubmission_file_<file
  name>`` (flat). The prefix is built in ``download_submissions`` of Moodle's
  ``mod/assign/locallib.php``; the participant id is Moodle's per-assignment id of the
  student, so the name is what identifies them (underscores in it become spaces).

Students are found in the roster (:mod:`coursekit.lms.roster`): by ``canvas_id`` for
Canvas, by ``name`` for Moodle (a roster without that column is refused once, before
anything is written). A download holds one assignment: the module given with ``--module``,
or the one most of its notebooks' names point to (``Tensor.ipynb``, ``tensor (1).ipynb``,
``tensor-2.ipynb`` all mean ``01_tensor``). A notebook named for another module is not
placed, and a ``--module`` that most names contradict is refused, so a stray notebook never
lands under, or replaces, a submission of another module. The whole archive is read and
checked before the first file is written. A notebook is written under the module's notebook
name, with a ``timestamp.txt`` next to it (as nbgrader's collect writes it) holding the
time the archive gives the file (the LMS's upload time, in ``timezone``), and ``lms.json``
with the LMS's name for the file (what ``course feedback --layout`` needs to name feedback
for upload).
Every file that cannot be placed is reported with the reason; of two notebooks for one
student and module, the newer is kept; a notebook collected before that is replaced is
listed.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

from coursekit.course import Course, CourseError, Module
from coursekit.grading.grade import looks_like, writable_folder
from coursekit.lms.roster import Person, Roster, name_key

CANVAS_RE = re.compile(r"^(?:(?P<name>[^_/]+)_)??(?P<late>late_)?(?P<user>\d+)_(?P<sub>\d+)_"
                       r"(?P<file>[^/]+)$", re.IGNORECASE)
MOODLE_DIR_RE = re.compile(r"^(?P<name>[^_/]+)_(?P<user>\d+)_(?P<plugin>assignsubmission_"
                           r"[a-z]+)_?$")
MOODLE_FLAT_RE = re.compile(r"^(?P<name>[^_/]+)_(?P<user>\d+)_(?P<plugin>assignsubmission_"
                            r"[a-z]+)_(?P<file>[^/]+)$")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"  # nbgrader's, with the zone written as UTC
MAX_NOTEBOOK_BYTES = 50_000_000


@dataclass
class Entry:
    """One file of the download, as the LMS named it."""

    path: str
    lms: str  # canvas | moodle
    name: str  # the name part of the LMS's file name
    user: str  # Canvas user id / Moodle participant id
    filename: str  # the student's own file name
    prefix: str  # everything the LMS put before the file name
    late: bool = False
    submission: str = ""  # Canvas: the file's attachment id


@dataclass
class Placed:
    """A notebook written into the submissions folder."""

    entry: Entry
    person: Person
    module: Module
    time: datetime  # UTC


def parse_entry(path: str) -> Entry | None:
    """The LMS's name parts of a zip entry (None if it follows neither layout)."""
    parts = PurePosixPath(path).parts
    if len(parts) == 2:
        m = MOODLE_DIR_RE.match(parts[0])
        if m:
            return Entry(path, "moodle", m["name"], m["user"], parts[1], parts[0] + "/")
    if len(parts) == 1:
        m = MOODLE_FLAT_RE.match(parts[0])
        if m:
            return Entry(path, "moodle", m["name"], m["user"], m["file"],
                         parts[0][: -len(m["file"])])
        m = CANVAS_RE.match(parts[0])
        if m:
            return Entry(path, "canvas", m["name"] or "", m["user"], m["file"],
                         parts[0][: -len(m["file"])], late=bool(m["late"]),
                         submission=m["sub"])
    return None


def entry_time(info: zipfile.ZipInfo, zone: ZoneInfo | type[UTC]) -> datetime:
    """The time the archive gives a file, in UTC: the extended-timestamp field (UTC) when
    the archive has one, else the DOS date and time read in ``zone``."""
    extra = info.extra
    while len(extra) >= 4:
        kind, size = struct.unpack("<HH", extra[:4])
        body = extra[4:4 + size]
        if kind == 0x5455 and size >= 5 and body[0] & 1:
            return datetime.fromtimestamp(struct.unpack("<I", body[1:5])[0], UTC)
        extra = extra[4 + size:]
    local = datetime(*info.date_time)
    tz = UTC if zone is UTC else zone
    return local.replace(tzinfo=tz).astimezone(UTC)


def find_person(entry: Entry, roster: Roster) -> tuple[Person | None, str]:
    """The roster's student for an entry, or None and why not."""
    if entry.lms == "canvas":
        person = roster.by_canvas_id().get(entry.user)
        if person is None:
            return None, (f"Canvas user id {entry.user} ({entry.name}) is not in the roster's "
                          "canvas_id column")
        return person, ""
    found = roster.by_name().get(name_key(entry.name), [])
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, f"no student named {entry.name!r} in the roster's name column"
    return None, (f"{len(found)} students named {entry.name!r} in the roster "
                  f"({', '.join(p.student for p in found)})")


LMS_ID = {"canvas": ("canvas_id", "Canvas names the files of its download by user id (the ID "
                               "column of Canvas's gradebook export)"),
          "moodle": ("name", "Moodle names the files of its download by the student's full "
                             "name")}


def collect(course: Course, download: Path, roster: Roster, out: Path, *,
            modules: list[str] | None = None, timezone: str | None = None,
            log: Callable[[str], None] = print) -> list[Placed]:
    """Write the notebooks of an LMS download into ``out``; report what was not placed.

    A download holds one assignment: the module ``modules`` names, or the one most of its
    notebooks are named for. A notebook named for another module is not placed (and a
    ``--module`` that most names contradict is refused), so nothing lands under, or
    replaces, another module's submission. Everything is read, and the archive checked,
    before the first file is written: a damaged archive writes nothing. A notebook that
    replaces one collected before is listed.
    """
    chosen = course.select(modules) if modules else None
    if chosen is not None and len(chosen) != 1:
        raise CourseError("--module: name one module (a download holds one assignment)")
    zone = _zone(timezone)
    if not download.is_file():
        raise CourseError(f"{download}: no such file (expected the LMS's zip download)")
    try:
        archive = zipfile.ZipFile(download)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CourseError(f"{download}: not a zip archive ({exc})") from None
    skipped: list[tuple[str, str]] = []
    with archive:
        candidates: list[tuple[Entry, zipfile.ZipInfo]] = []
        for info in archive.infolist():
            if info.is_dir() or PurePosixPath(info.filename).name.startswith("."):
                continue
            entry = parse_entry(info.filename)
            if entry is None:
                skipped.append((info.filename, "not named as a Canvas or Moodle download "
                                "names files (<name>_<id>_...)"))
            elif not entry.filename.lower().endswith(".ipynb"):
                skipped.append((info.filename, f"{entry.filename!r} is not a notebook"))
            else:
                candidates.append((entry, info))
        for lms in sorted({e.lms for e, _ in candidates}):
            column, why = LMS_ID[lms]
            lack = roster.lacks(column)
            if lack:
                raise CourseError(f"--roster {roster.path} {lack}: {why}; add it to the "
                                  f"roster (nothing was written)")
        module = _download_module(download, course, candidates, chosen)
        best: dict[str, tuple[Placed, zipfile.ZipInfo]] = {}
        for entry, info in candidates:
            person, why = find_person(entry, roster)
            if person is None:
                skipped.append((info.filename, why))
                continue
            named = _named_for(entry.filename, course.modules())
            if named is not None and named != module:
                skipped.append((info.filename, f"{entry.filename!r} is named for "
                                f"{named.folder}, and this download is {module.folder}'s; "
                                f"collect {named.folder} from its own download"))
                continue
            if named is None and chosen is None:
                known = ", ".join(m.notebook_name for m in course.modules())
                skipped.append((info.filename, f"{entry.filename!r} is no notebook of this "
                                f"course ({known}); give the module with --module"))
                continue
            if info.file_size > MAX_NOTEBOOK_BYTES:
                skipped.append((info.filename, f"{info.file_size} bytes: larger than "
                                f"{MAX_NOTEBOOK_BYTES} bytes"))
                continue
            placed = Placed(entry, person, module, entry_time(info, zone))
            key = person.student
            if key in best:
                older, newer = sorted([best[key], (placed, info)], key=lambda x: x[0].time)
                skipped.append((older[1].filename, f"an older notebook of {person.student} for "
                                f"{module.folder}; kept {newer[1].filename}"))
                best[key] = newer
            else:
                best[key] = (placed, info)
        data = {student: _read(download, archive, info) for student, (_, info) in best.items()}
    placed_all = [p for p, _ in best.values()]
    if not placed_all:
        _report_skipped(skipped, log)
        raise CourseError(f"{download}: no notebook could be placed (see the list above)")
    out = writable_folder(out, "--out")
    replaced: list[str] = []
    for placed in placed_all:
        before = _write(out, placed, data[placed.person.student])
        if before:
            replaced.append(before)
    students = {p.person.student for p in placed_all}
    log(f"collect: {len(placed_all)} notebook(s) of {len(students)} student(s) for "
        f"{module.folder} written to {out}/<student>/{module.folder}/")
    for p in sorted(placed_all, key=lambda p: p.person.student):
        late = " (the LMS marks it late)" if p.entry.late else ""
        log(f"  {p.person.student}/{p.module.folder}/{p.module.notebook_name} <- "
            f"{p.entry.path}, submitted {p.time:%Y-%m-%d %H:%M:%S} UTC{late}")
    if replaced:
        log(f"collect: {len(replaced)} notebook(s) collected before were replaced:")
        for line in replaced:
            log(f"  {line}")
    _report_skipped(skipped, log)
    missing = [p.student for p in roster.people if p.student not in students]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more"
                                           if len(missing) > 10 else "")
        log(f"collect: no notebook from {len(missing)} student(s) of the roster: {shown}")
    return placed_all


def _report_skipped(skipped: list[tuple[str, str]], log: Callable[[str], None]) -> None:
    if skipped:
        log(f"collect: {len(skipped)} file(s) not placed:")
        for path, why in skipped:
            log(f"  {path}: {why}")


def _named_for(filename: str, modules: list[Module]) -> Module | None:
    """The module a notebook's name points to (``Tensor (1).ipynb``: 01_tensor), if one."""
    matches = [m for m in modules if looks_like(filename, m)]
    return matches[0] if len(matches) == 1 else None


def _download_module(download: Path, course: Course,
                     candidates: list[tuple[Entry, zipfile.ZipInfo]],
                     chosen: list[Module] | None) -> Module:
    """The one module of a download: ``chosen`` (``--module``) unless most notebooks are
    named for another, else the module more than half of them are named for."""
    counts: dict[Module, int] = {}
    for entry, _ in candidates:
        named = _named_for(entry.filename, course.modules())
        if named is not None:
            counts[named] = counts.get(named, 0) + 1
    named_total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].folder))
    shown = ", ".join(f"{m.folder}: {n}" for m, n in ranked)
    if chosen is not None:
        (module,) = chosen
        if ranked and ranked[0][0] != module and ranked[0][1] * 2 > named_total:
            raise CourseError(f"--module {module.number}: the notebooks in {download.name} "
                              f"are named for {ranked[0][0].folder} ({shown} of "
                              f"{len(candidates)} notebook(s)), not {module.folder}; nothing "
                              "was written (is it the other module's download?)")
        return module
    if not ranked:
        known = ", ".join(m.notebook_name for m in course.modules())
        raise CourseError(f"{download}: no notebook in it is named as one of this course's "
                          f"({known}); give the module with --module")
    module, count = ranked[0]
    if count * 2 <= named_total:
        raise CourseError(f"{download}: its notebooks are named for several modules "
                          f"({shown}); a download holds one assignment: give it with --module")
    return module


def _read(download: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """An entry's bytes, checked against the archive's checksum; a damaged entry stops the
    whole collect before anything is written."""
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
            ValueError) as exc:
        raise CourseError(f"{download}: damaged archive: {info.filename} cannot be read "
                          f"({type(exc).__name__}: {exc}); nothing was written; download it "
                          "again from the LMS") from None


def _zone(name: str | None) -> ZoneInfo | type[UTC]:
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise CourseError(f"--timezone {name}: unknown time zone; expected a name such as "
                          "Europe/Berlin or UTC") from None


def _write(out: Path, placed: Placed, data: bytes) -> str:
    """Write one notebook with its ``timestamp.txt`` and ``lms.json``; a line on the notebook
    it replaced (empty if there was none, or it was the same)."""
    folder = out / placed.person.student / placed.module.folder
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / placed.module.notebook_name
    stamp = folder / "timestamp.txt"
    when = placed.time.strftime(TIMESTAMP_FORMAT) + "\n"
    replaced = ""
    if target.is_file():
        old_when = stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else "no time"
        if target.read_bytes() != data or old_when != when.strip():
            replaced = (f"{placed.person.student}/{placed.module.folder}/"
                        f"{placed.module.notebook_name}: submitted {old_when} before, now "
                        f"{when.strip()} ({placed.entry.path})")
    for path, content in ((target, data), (stamp, when.encode("utf-8"))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    e = placed.entry
    (folder / "lms.json").write_text(json.dumps({
        "lms": e.lms, "name": e.name, "user": e.user, "submission": e.submission,
        "late": e.late, "prefix": e.prefix, "filename": e.filename, "path": e.path,
    }, indent=1) + "\n", encoding="utf-8")
    return replaced
