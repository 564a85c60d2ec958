"""The ``course`` command line: build, release, grade, collect, extend, export, feedback,
check, demo, examples (and the student-side commands of :mod:`coursekit.publishing.lab`)."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from coursekit.course import Course, CourseError
from coursekit.publishing.lab import register as register_student_commands

if TYPE_CHECKING:
    from coursekit.lms.roster import Roster


class CourseParser(argparse.ArgumentParser):
    """argparse with the course's convention for bad input: one message, exit code 1."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _course(args: argparse.Namespace) -> Course:
    return Course(args.root) if args.root else Course.find()


def cmd_build(args: argparse.Namespace) -> int:
    from coursekit.authoring.build import build

    build(_course(args), args.module, check_import=not args.no_import_check)
    print("build: done")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from coursekit.authoring.release import release

    release(_course(args), args.module)
    return 0


def _roster(course: Course, given: str | None) -> Roster | None:
    """The roster ``--roster`` names, else ``roster.csv`` in the course root if there is
    one, else None."""
    from coursekit.lms import roster

    if given:
        return roster.load(Path(given))
    default = course.root / "roster.csv"
    return roster.load(default, "roster.csv") if default.is_file() else None


def cmd_grade(args: argparse.Namespace) -> int:
    from coursekit.grading.grade import grade
    from coursekit.grading.records.results import print_table

    course = _course(args)
    people = _roster(course, args.roster)
    results = grade(
        course, Path(args.submissions), out=Path(args.out) if args.out else None,
        db_url=args.db_url, modules=args.module, workers=args.workers,
        feedback=not args.no_feedback, students=args.student, sandbox=not args.no_sandbox,
        scheduler=args.scheduler, regrade=args.regrade,
        switch_gradebook=args.switch_gradebook,
        names=people.gradebook_fields() if people else None,
    )
    print_table(results)
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from coursekit.lms import roster
    from coursekit.lms.collect import collect
    from coursekit.grading.records.deadlines import due_timezone

    course = _course(args)
    people = roster.load(Path(args.roster))
    out = Path(args.out) if args.out else course.root / "grading" / "submissions"
    collect(course, Path(args.download), people, out, modules=args.module,
            timezone=args.timezone or due_timezone(course))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from coursekit.lms import roster
    from coursekit.lms.export import export
    from coursekit.grading.grade import existing_root

    course = _course(args)
    people = roster.load(Path(args.roster)) if args.roster else None
    groot = existing_root(course, Path(args.grading) if args.grading else None, args.db_url)
    out = Path(args.out) if args.out else groot.root / f"grades-{args.format}.csv"
    export(course, args.format, groot.db_url, groot.course_id, groot.root, out, people)
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from coursekit.lms.feedback_archive import bundle, feedback_pages

    from coursekit.grading.grade import existing_root, write_grades
    from coursekit.grading.records.feedback import render_stale

    course = _course(args)
    groot = existing_root(course, Path(args.grading) if args.grading else None)
    root = groot.root
    # every page as the gradebook has it now: manual grades, extensions, regrades; and
    # grades.csv with them
    render_stale(root, groot.db_url, groot.course_id, course.modules())
    write_grades(groot)
    if not args.zip:
        pages = feedback_pages(root)
        count = sum(len(p) for p in pages.values())
        print(f"feedback: {count} page(s) of {len(pages)} student(s) in {root / 'feedback'}; "
              "--zip bundles them for returning")
        return 0
    out = Path(args.out) if args.out else root / "feedback-zips"
    bundle(root, out, args.layout, Path(args.submissions) if args.submissions else None)
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    from coursekit.grading.grade import existing_root, write_grades
    from coursekit.grading.records import database
    from coursekit.grading.records import extensions as ext
    from coursekit.grading.records.root import (
        ROOT_CONFIG,
        GradingRoot,
        choose_gradebook,
        open_root,
    )
    from coursekit.released import released_modules, require_released

    course = _course(args)
    root = ext.grading_root_path(course, args.grading)
    if args.list:
        groot = existing_root(course, root, args.db_url, who="extend")
        wanted = {m.folder for m in (course.select([args.module]) if args.module
                                     else released_modules(course))}
        found = [e for e in ext.extensions(groot, wanted)
                 if args.student in (None, e.student)]
        print(f"extend: {len(found)} extension(s) in the gradebook "
              f"{database.masked(groot.db_url)}")
        for e in found:
            print(f"  {ext.describe(e)}")
        return 0
    if not args.student or not args.module:
        raise CourseError("give STUDENT and MODULE (e.g. `course extend ada 03 --days 2`), "
                          "or --list")
    if not args.until and args.days is None and not args.remove:
        raise CourseError(f"{args.student} {args.module}: give --until DATE, --days N or "
                          "--remove")
    try:
        (module,) = course.select([args.module])
    except CourseError as exc:
        raise CourseError(str(exc).replace("--module", "MODULE", 1)) from None
    require_released(course, [module], option="MODULE")
    length = None if args.remove else ext.length_of(course, module, until=args.until,
                                                    days=args.days)
    people = _roster(course, args.roster)
    known = {p.student for p in people.people} if people else set()
    url = database.check(args.db_url) if args.db_url else None
    url = choose_gradebook(root, url, switch_option="", who="extend")
    if (root / ROOT_CONFIG).is_file():
        groot = GradingRoot(course, root, url)
    else:  # no grading yet: this makes the grading root and records its gradebook
        if args.student not in known:
            raise CourseError(f"STUDENT {args.student}: not in the roster "
                              f"({args.roster or 'roster.csv'}); nothing is graded yet")
        groot = open_root(course, root, url)
    now = ext.grant(groot, module, args.student, length, known, log=print)
    where = database.masked(groot.db_url)
    if now is None:
        print(f"extend: {args.student} {module.folder}: no extension (gradebook {where})")
    else:
        print(f"extend: {ext.describe(now)} (gradebook {where})")
    path = write_grades(groot)
    print(f"extend: {path} written with it; the next `course grade` grades "
          f"{args.student}'s {module.folder} again with it (its feedback page too)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from coursekit.report import write_report

    write_report(_course(args), out=Path(args.out) if args.out else None, modules=args.module,
                 grading=Path(args.grading) if args.grading else None, db_url=args.db_url)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from coursekit.service.serve import serve

    return serve(_course(args), host=args.host, port=args.port,
                 grading=Path(args.grading) if args.grading else None, db_url=args.db_url,
                 workers=args.workers, scheduler=args.scheduler,
                 submissions=Path(args.submissions) if args.submissions else None,
                 sandbox=not args.no_sandbox, ssl_certfile=args.ssl_certfile,
                 ssl_keyfile=args.ssl_keyfile, forwarded_allow_ips=args.forwarded_allow_ips,
                 access_log=args.access_log)


def cmd_tokens(args: argparse.Namespace) -> int:
    from coursekit.service.serve import run_tokens

    return run_tokens(_course(args), roster=Path(args.roster) if args.roster else None,
                      students=args.student or [], instructor=args.instructor,
                      revoke=args.revoke or [], reissue=args.reissue, listing=args.list,
                      grading=Path(args.grading) if args.grading else None,
                      db_url=args.db_url, out=Path(args.out) if args.out else None)


def cmd_check(args: argparse.Namespace) -> int:
    from coursekit.check import check

    return 0 if check(_course(args), args.module, skip_grading=args.sync_only,
                      workers=args.workers) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from coursekit.demo import demo

    return demo(_course(args), out=Path(args.out) if args.out else None)


def cmd_examples(args: argparse.Namespace) -> int:
    from coursekit.authoring.examples import make_examples

    make_examples(_course(args))
    return 0


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``course`` command."""
    parser = CourseParser(
        prog="course",
        description="Instructor tool of the course: build notebooks and the reference package "
        "from modules/, release student notebooks, grade submissions with nbgrader.",
    )
    parser.add_argument(
        "--root", help="course root (default: the folder above the current one that holds "
        "modules/ and grader_config.py)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def module_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--module", "-m", action="append", metavar="NN",
            help="only this module (01, 1, 01_tensor or tensor); repeatable; default: all")

    p = sub.add_parser(
        "build", help="lint modules, write source_notebooks/ and tinytorch/core/",
        description="Lint each module file, then write its nbgrader source notebook "
        "source_notebooks/NN_name/name.ipynb and its export tinytorch/core/name.py.")
    module_arg(p)
    p.add_argument("--no-import-check", action="store_true",
                   help="do not try to import the exported file")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser(
        "release", help="nbgrader generate_assignment into release/, then the leak guard",
        description="Run nbgrader generate_assignment for each module into release/NN_name/ "
        "and check release/ for leaked solutions, hidden tests and stray files.")
    module_arg(p)
    p.set_defaults(func=cmd_release)

    p = sub.add_parser(
        "grade", help="autograde submissions, write feedback and grades.csv",
        description="Autograde DIR/<student>/<NN_name>/<name>.ipynb with nbgrader, generate "
        "feedback HTML (hidden tests not shown) and write grades.csv from the gradebook: "
        "every student and assignment in it, whatever this run graded. A timestamp.txt next "
        "to a notebook is its submission time (late work: course.toml [due] and [late]). "
        "A submission graded before in the same grading root, from the same file by the same "
        "grader, is kept (--regrade grades it again), so after Ctrl-C or a lost cluster the "
        "same command grades only what is missing. Ctrl-C stops cleanly: grades.csv is "
        "written for what was saved. With --scheduler the workers of a Dask cluster grade.")
    p.add_argument("--submissions", required=True, metavar="DIR",
                   help="folder laid out as DIR/<student_id>/<NN_name>/<name>.ipynb")
    p.add_argument("--out", metavar="DIR",
                   help="grading course root (default: grading/ in the course root)")
    p.add_argument("--db-url", metavar="URL",
                   help="gradebook SQLAlchemy URL, without a password (PostgreSQL's comes "
                   "from PGPASSWORD or ~/.pgpass); the first run in a grading root records "
                   "it, later runs use it (default: the recorded one, for a new root "
                   "gradebook.db in it)")
    p.add_argument("--switch-gradebook", action="store_true",
                   help="let --db-url name another gradebook than the one the grading root "
                   "keeps, and keep that one from now on")
    p.add_argument("--workers", "-j", type=int, metavar="N",
                   help="grading worker processes (default: the number of cores; "
                   "0: grade in this process)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="grade on the Dask cluster of this scheduler (`dask scheduler` prints "
                   "its address; start workers with `dask worker tcp://HOST:PORT`) instead "
                   "of local worker processes")
    p.add_argument("--regrade", action="store_true",
                   help="grade every submission again, also those unchanged since they were "
                   "graded")
    p.add_argument("--no-feedback", action="store_true", help="do not write feedback HTML")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run the kernels without the bubblewrap sandbox (only for trusted "
                   "notebooks, on systems without it); grades.csv marks the rows")
    p.add_argument("--student", "-s", action="append", metavar="ID",
                   help="only this student's folder; repeatable")
    p.add_argument("--roster", metavar="CSV",
                   help="roster.csv: the students' names, emails and LMS ids go into the "
                   "gradebook (default: roster.csv in the course root, if there is one)")
    module_arg(p)
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser(
        "collect", help="an LMS bulk download (Canvas, Moodle) -> the submissions layout",
        description="Turn a Canvas or Moodle 'download all submissions' zip into "
        "DIR/<student>/<NN_name>/<name>.ipynb (with timestamp.txt, the submission time) for "
        "`course grade`. Students are found in the roster (Canvas: canvas_id; Moodle: name); "
        "every file that cannot be placed is listed with the reason.")
    p.add_argument("download", metavar="DOWNLOAD.zip", help="the LMS's zip download")
    p.add_argument("--roster", required=True, metavar="CSV",
                   help="roster.csv: student (the course's id), name, canvas_id, ...")
    p.add_argument("--out", metavar="DIR",
                   help="submissions folder to write (default: grading/submissions)")
    p.add_argument("--timezone", metavar="ZONE",
                   help="time zone of the times in the zip (default: course.toml [due] "
                   "timezone, else UTC)")
    p.add_argument("--module", "-m", action="append", metavar="NN",
                   help="the module of this download (default: from the notebooks' names)")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser(
        "export", help="the gradebook as a Canvas or Moodle grade import (or a plain CSV)",
        description="Write the gradebook's scores (manual grades included, late penalty "
        "taken off) in the grade-import layout of Canvas or Moodle, or as a plain table: one "
        "row per roster student, one column per assignment.")
    p.add_argument("--format", required=True, choices=("canvas", "moodle", "csv"),
                   help="canvas | moodle | csv")
    p.add_argument("--roster", metavar="CSV",
                   help="roster.csv with the LMS's ids (needed for canvas and moodle)")
    p.add_argument("--grading", metavar="DIR", help="grading root (default: grading/)")
    p.add_argument("--db-url", metavar="URL",
                   help="the grading root's gradebook with its password, say (default: the "
                   "one it keeps; another is refused)")
    p.add_argument("--out", metavar="FILE",
                   help="file to write (default: grades-FORMAT.csv in the grading root)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "feedback", help="bundle the feedback pages for returning (--zip)",
        description="First remake every feedback page whose scores changed in the gradebook "
        "since it was made (a manual grade or extra credit in the formgrader, an extension, a "
        "regrade), and any that is missing, and grades.csv with them; then bundle them: one "
        "archive per student (--layout student), or one per module in the upload layout of "
        "Canvas or Moodle (--layout canvas|moodle, with --submissions from `course "
        "collect`). Without --zip, "
        "say how many pages there are.")
    p.add_argument("--zip", action="store_true", help="write the archives")
    p.add_argument("--layout", default="student", choices=("student", "canvas", "moodle"),
                   help="student (default): <student>.zip; canvas, moodle: the LMS's upload "
                   "layout, one archive per module")
    p.add_argument("--submissions", metavar="DIR",
                   help="the folder `course collect` wrote (for --layout canvas|moodle)")
    p.add_argument("--grading", metavar="DIR", help="grading root (default: grading/)")
    p.add_argument("--out", metavar="DIR",
                   help="folder for the archives (default: feedback-zips/ in the grading root)")
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser(
        "extend", help="give a student more time for a module (recorded in the gradebook)",
        description="Record an extension of MODULE's due date (course.toml [due]) for STUDENT "
        "in the grading root's gradebook, as nbgrader keeps it (a length of time added to "
        "the due date). The late penalty is worked out again at once and grades.csv "
        "written anew; the next `course grade` grades the submission again with it. "
        "--list lists the extensions.")
    p.add_argument("student", nargs="?", metavar="STUDENT", help="the student's id")
    p.add_argument("module", nargs="?", metavar="MODULE",
                   help="the module (01, 1, 01_tensor or tensor)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--until", metavar="DATE",
                     help="the student's new deadline: 2026-02-08T23:59 (in [due] timezone "
                     "unless it has an offset) or 2026-02-08 (the end of that day)")
    how.add_argument("--days", type=float, metavar="N",
                     help="N days more than the due date (1.5 is a day and a half)")
    how.add_argument("--remove", action="store_true", help="take the extension back")
    how.add_argument("--list", action="store_true",
                     help="list the extensions (of STUDENT, MODULE, if given)")
    p.add_argument("--grading", metavar="DIR", help="grading root (default: grading/)")
    p.add_argument("--db-url", metavar="URL",
                   help="the gradebook, for a grading root not graded yet (default: the "
                   "one the root keeps; another is refused)")
    p.add_argument("--roster", metavar="CSV",
                   help="roster.csv, for a student who has handed in nothing yet (default: "
                   "roster.csv in the course root, if there is one)")
    p.set_defaults(func=cmd_extend)

    p = sub.add_parser(
        "report", help="the class report: plots, item analysis, who is behind (report.html)",
        description="Write DIR/report.html, one self-contained page about the class from the "
        "gradebook and the grading root (never the submissions' code): per module the score "
        "distribution, mean, median, full, zero, missing and late; item analysis of every "
        "graded test (difficulty, discrimination, the most common failure messages, and the "
        "tests strong students fail: check the prose); submissions against the due date and "
        "late penalties; flagged submissions linked to their feedback; a sortable table of "
        "students by modules. The numbers behind every figure are written as CSV beside it.")
    p.add_argument("--out", metavar="DIR",
                   help="folder for report.html and its CSV files (default: the grading root)")
    p.add_argument("--grading", metavar="DIR", help="grading root (default: grading/)")
    p.add_argument("--db-url", metavar="URL",
                   help="gradebook URL (default: the one the grading root was graded into)")
    module_arg(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "serve", help="the grading service: students press Submit in the notebook",
        description="Run the grading service that the Submit cell of every release notebook "
        "(and `python -m tinytorch.submit`) sends notebooks to. Each submission is graded "
        "exactly as `course grade` grades a file (bundle, sandbox, limits, flags, restored "
        "test cells, late policy, feedback page) into the grading root and its gradebook, "
        "and the student gets the score and each failed test's name and message back. "
        "Tokens: `course tokens`. Settings: course.toml [service] (url, "
        "submissions_per_hour, counts, closes, max_notebook_mb, queue). Accepted "
        "submissions are on disk and in the database before the answer, and graded after "
        "a restart if the service was stopped first. Put it behind a TLS reverse proxy (or "
        "give --ssl-certfile and --ssl-keyfile).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: behind a reverse proxy)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--grading", metavar="DIR", help="grading root (default: grading/)")
    p.add_argument("--db-url", metavar="URL",
                   help="the gradebook, for a grading root not graded yet (default: the one "
                   "the grading root keeps; another is refused)")
    p.add_argument("--workers", "-j", type=int, metavar="N",
                   help="grading processes, kept warm (default: the number of cores)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="grade on the Dask cluster of this scheduler instead")
    p.add_argument("--submissions", metavar="DIR",
                   help="where the submission that counts is kept for `course grade "
                   "--submissions` (default: submissions/ in the grading root)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="grade without the bubblewrap sandbox (trusted notebooks only)")
    p.add_argument("--ssl-certfile", metavar="FILE", help="TLS certificate (uvicorn's own TLS)")
    p.add_argument("--ssl-keyfile", metavar="FILE", help="TLS key (with --ssl-certfile)")
    p.add_argument("--forwarded-allow-ips", metavar="IPS",
                   help="the reverse proxies whose X-Forwarded-For names the client (e.g. "
                   "127.0.0.1); the limit on wrong tokens counts per client address")
    p.add_argument("--access-log", action="store_true",
                   help="log every HTTP request too (default: one line per submission)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "tokens", help="the grading service's tokens: one per student, stored hashed",
        description="Issue a secret token for every student of the roster who has none (or "
        "--student ID), printed once as CSV (student, name, email, token) to send each "
        "student their own; the gradebook's database stores only a salted hash. --reissue "
        "replaces a student's token (the old one stops at once), --revoke ID stops one, "
        "--list shows who has one. --instructor NAME makes a token for the service's "
        "status and class report.")
    p.add_argument("--roster", metavar="CSV", help="roster.csv: a token for each student in it")
    p.add_argument("--student", "-s", action="append", metavar="ID",
                   help="only this student; repeatable")
    p.add_argument("--instructor", metavar="NAME",
                   help="a token for the instructor's view (status, class report)")
    p.add_argument("--reissue", action="store_true",
                   help="a new token even for those who have one (the old one is revoked)")
    p.add_argument("--revoke", action="append", metavar="ID",
                   help="revoke the tokens of this student (or instructor); repeatable")
    p.add_argument("--list", action="store_true", help="list the tokens (never their secret)")
    p.add_argument("--out", metavar="FILE",
                   help="write the CSV to FILE (mode 0600) instead of printing it")
    p.add_argument("--grading", metavar="DIR", help="grading root (default: grading/)")
    p.add_argument("--db-url", metavar="URL",
                   help="the gradebook, for a grading root not graded yet (default: the one "
                   "the grading root keeps)")
    p.set_defaults(func=cmd_tokens)

    p = sub.add_parser(
        "check", help="CI gate: generated files in sync, solutions full marks, blanks zero",
        description="Rebuild into a temporary folder and compare with the committed "
        "generated files; autograde every solution notebook (must get full marks) and every "
        "untouched release notebook (must get zero).")
    module_arg(p)
    p.add_argument("--sync-only", action="store_true", help="only the sync check (a), no grading")
    p.add_argument("--workers", "-j", type=int, metavar="N",
                   help="grading worker processes (default: the number of cores; "
                   "0: grade in this process)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "demo", help="build, release and grade the example class in examples/submissions/",
        description="Build, release, then grade examples/submissions/ and print the grade table.")
    p.add_argument("--out", metavar="DIR", help="grading root (default: grading/demo)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "examples", help="regenerate the example class examples/submissions/",
        description="Regenerate examples/submissions/ from release/ and source_notebooks/: "
        "complete, blank and partly right students, plus one corrupt file.")
    p.set_defaults(func=cmd_examples)

    register_student_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``course`` command; return the process exit code."""
    for stream in (sys.stdout, sys.stderr):
        # a line as soon as it is printed, also into a pipe or a log file (progress of a
        # long run; a reader that acts on a line, as `tee` or a CI log does)
        with suppress(AttributeError, ValueError, io.UnsupportedOperation):
            stream.reconfigure(line_buffering=True)
    try:
        args = make_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a bad argument (the message is printed)
        return exc.code if isinstance(exc.code, int) else 1
    try:
        return int(args.func(args))
    except CourseError as exc:
        print(f"course {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"course {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"course {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if not type(exc).__module__.startswith("sqlalchemy"):
            raise
        # the database went away (or refused a write) after the checks at the start
        orig = getattr(exc, "orig", None) or exc
        first = next((line for line in str(orig).splitlines() if line.strip()), repr(orig))
        print(f"course {args.command}: error: the gradebook's database failed: {first}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
