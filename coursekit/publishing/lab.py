"""The student's side of the course: the published repository, JupyterLab in student mode.

Sub-commands of ``course`` registered here (:func:`register`):

* ``course publish DIR [--through NN]`` writes the student repository
  (:mod:`coursekit.publishing.publish`);
* ``course badges`` prints the Binder and Colab badges of that repository
  (:mod:`coursekit.publishing.badges`);
* ``course lab [DIR]`` starts JupyterLab on a student repository as students get it on
  Binder: nbgrader's student extensions only (assignment list, validate), and the
  package of that repository, not the instructor's, in the kernel. Without ``DIR`` it
  previews the repository ``course publish`` would write, in ``.student-lab/repo``.
  Its Jupyter settings (``binder/student-mode.json`` of that repository, the settings
  Binder gets) live in a temporary folder, so the instructor's JupyterLab set-up is left
  as it is.

Where the student repository lives is ``[student_repository]`` in ``course.toml``
(:mod:`coursekit.authoring.student_repository`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.authoring.student_repository import read, resolve_through
from coursekit.course import Course, CourseError
from coursekit.publishing.badges import render_badges, write_badges
from coursekit.publishing.publish import marker_of, publish

#: Where a student repository (and the instructor's, which ``course publish`` copies it
#: from) keeps the settings of student mode: ``binder/postBuild`` applies them on Binder,
#: :func:`write_student_config` for ``course lab``.
STUDENT_MODE_FILE = "binder/student-mode.json"
#: Folder (in the course root, gitignored) that holds the preview of ``course lab``.
STUDENT_LAB_DIR = ".student-lab"


@dataclass(frozen=True)
class StudentMode:
    """The settings of student mode (``binder/student-mode.json``)."""

    #: nbgrader's instructor-only JupyterLab plugins (students keep the assignment list,
    #: Validate and the menu).
    disabled_lab_plugins: tuple[str, ...]
    #: nbgrader's instructor-only server extensions.
    disabled_server_extensions: tuple[str, ...]
    #: JupyterLab setting overrides (plugin id -> settings).
    setting_overrides: dict[str, Any]

    @classmethod
    def read(cls, root: Path) -> StudentMode:
        """The student mode of the repository at ``root`` (its ``binder/student-mode.json``)."""
        path = Path(root) / STUDENT_MODE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            mode = cls(tuple(data["disabled_lab_plugins"]),
                       tuple(data["disabled_server_extensions"]),
                       dict(data["setting_overrides"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CourseError(f"{path}: cannot read the student-mode settings ({exc}); "
                              "expected disabled_lab_plugins, disabled_server_extensions "
                              "and setting_overrides") from exc
        if not all(isinstance(v, str) for v in
                   mode.disabled_lab_plugins + mode.disabled_server_extensions):
            raise CourseError(f"{path}: the plugins and server extensions must be strings")
        return mode


# -- student mode ------------------------------------------------------------------------------


def write_student_config(config_dir: Path, mode: StudentMode) -> None:
    """Write a Jupyter config folder (for ``JUPYTER_CONFIG_DIR``) in student ``mode``.

    The settings ``binder/postBuild`` applies at the environment's level, written here at
    the user level of a private folder: disabled and locked nbgrader plugins
    (``labconfig/page_config.json``), the setting overrides
    (``labconfig/default_setting_overrides.json``) and disabled server extensions
    (``jupyter_server_config.json``).
    """
    labconfig = config_dir / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    plugins = {name: True for name in mode.disabled_lab_plugins}
    _write_json(labconfig / "page_config.json",
                {"disabledExtensions": plugins, "lockedExtensions": plugins})
    _write_json(labconfig / "default_setting_overrides.json", mode.setting_overrides)
    _write_json(config_dir / "jupyter_server_config.json", {
        "ServerApp": {"jpserver_extensions": {
            name: False for name in mode.disabled_server_extensions}},
    })


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def student_env(config_dir: Path, base: dict[str, str] | None = None,
                package_root: Path | None = None) -> dict[str, str]:
    """Environment for a Jupyter process that reads the private student config folder.

    JupyterLab's user settings and workspaces default to folders inside it, so the
    student session neither reads nor changes the instructor's. With ``package_root``
    (a student repository), kernels import its ``tinytorch``, not the instructor's.
    """
    env = dict(os.environ if base is None else base)
    env["JUPYTER_CONFIG_DIR"] = str(config_dir)
    env["JUPYTERLAB_SETTINGS_DIR"] = str(config_dir / "lab" / "user-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(config_dir / "lab" / "workspaces")
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, *filter(None, env.get("PATH", "").split(os.pathsep))])
    if package_root is not None:
        # ahead of site-packages, where the instructor's package is installed editable
        env["PYTHONPATH"] = os.pathsep.join(
            [str(package_root), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    return env


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_server(base_url: str, timeout: float = 60.0,
                    alive: Callable[[], bool] = lambda: True) -> None:
    """Poll ``base_url/api`` until the Jupyter server answers; raise CourseError on time-out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise CourseError("JupyterLab exited before it answered; see its log above")
        try:
            with urllib.request.urlopen(f"{base_url}/api", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise CourseError(f"JupyterLab did not answer at {base_url} within {timeout:.0f} s")


def lab_command(root: Path, port: int, token: str, python: str = sys.executable) -> list[str]:
    """The ``jupyter lab`` command line of student mode (loopback only, token auth)."""
    cmd = [
        python, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # Jupyter refuses root otherwise (containers, CI)
    return cmd


def preview_repository(course: Course, through: str | None = None,
                       log: Callable[[str], None] = print) -> Path:
    """Publish a preview of the student repository into ``.student-lab/repo``; return it.

    The same tree ``course publish`` writes (leak guard included), without git; it is
    written again each time, so it follows the course.
    """
    dest = course.root / STUDENT_LAB_DIR / "repo"
    publish(course, dest, through, preview=True, log=log)
    return dest


def run_lab(course: Course, repo_dir: Path | None = None, port: int | None = None,
            open_browser: bool = True, notebook: str | None = None,
            through: str | None = None) -> int:
    """Start JupyterLab in student mode on a student repository; return its exit code.

    ``repo_dir`` is a repository made by ``course publish`` (default: a fresh preview).
    """
    if repo_dir is None:
        repo_dir = preview_repository(course, through)
    elif through is not None:
        raise CourseError("--through only applies to the preview (no DIR given)")
    repo_dir = Path(repo_dir).resolve()
    marker = marker_of(repo_dir)
    target = notebook or f"release/{marker['through']}"
    if not (repo_dir / target).exists():
        raise CourseError(f"--notebook {target}: not found in {repo_dir}")
    port = port or free_port()
    token = secrets.token_hex(24)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/lab/tree/{target}?token={token}"
    with tempfile.TemporaryDirectory(prefix="course-lab-") as config_tmp:
        config_dir = Path(config_tmp)
        write_student_config(config_dir, StudentMode.read(repo_dir))
        # cwd = repository root, as on Binder: nbgrader's Validate reads its config there
        proc = subprocess.Popen(lab_command(repo_dir, port, token), cwd=repo_dir,
                                env=student_env(config_dir, package_root=repo_dir))
        previous = _stop_on_sigterm()
        try:
            wait_for_server(base, alive=lambda: proc.poll() is None)
            print(f"course lab: JupyterLab in student mode on {repo_dir}")
            print(f"course lab: open {url}")
            print("course lab: press Ctrl-C to stop", flush=True)
            if open_browser:
                webbrowser.open(url)
            return proc.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm() -> Any:
    """Turn SIGTERM into KeyboardInterrupt, so that stopping ``course lab`` stops JupyterLab.

    Returns the previous handler (None when not in the main thread, where it cannot be set).
    """
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:
        return None


# -- command line ------------------------------------------------------------------------------


def _course(args: argparse.Namespace) -> Course:
    return Course(args.root) if getattr(args, "root", None) else Course.find()


def cmd_lab(args: argparse.Namespace) -> int:
    """``course lab``: JupyterLab in student mode."""
    return run_lab(_course(args), Path(args.dir) if args.dir else None, port=args.port,
                   open_browser=not args.no_browser, notebook=args.notebook,
                   through=args.through)


def cmd_badges(args: argparse.Namespace) -> int:
    """``course badges``: print the badge block, or write it into a Markdown file."""
    course = _course(args)
    repo = read(course)
    through = (resolve_through(course, args.through) if args.through is not None
               else repo.through_module(course))
    block = render_badges(course, repo, through)
    if args.write:
        changed = write_badges(Path(args.write), block)
        print(f"badges: {args.write} {'updated' if changed else 'unchanged'}")
    else:
        print(block)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """``course publish``: write the student repository."""
    publish(_course(args), Path(args.dir), args.through, force=args.force)
    return 0


def register(sub: Any) -> None:
    """Add ``publish``, ``badges`` and ``lab`` to the ``course`` parser's subparsers."""
    p = sub.add_parser(
        "publish", help="write the public student repository into DIR (a git repository)",
        description="Write the student repository into DIR: release notebooks 01..NN, the "
        "package tinytorch with the modules before NN only (importing NN or a later one "
        "fails and says why), binder/ (the student image), pyproject.toml and a README for "
        "students. The whole tree passes a leak guard (no hidden test, no solution of NN or "
        "later, no module source, source notebook, gradebook, grader configuration or "
        "submission) before anything is written; then one commit, only if something "
        "changed. DIR must be new, empty (a fresh clone of an empty repository is fine) or "
        "a student repository made by this command. Where students find it is "
        "[student_repository] in course.toml; a placeholder slug stops the command, and so "
        "does a module whose reference code would go out while it still takes submissions "
        "(its due date plus the late window), unless --force.")
    p.add_argument("dir", metavar="DIR", help="the student repository's folder")
    p.add_argument("--through", metavar="NN",
                   help="the last module released (01, 1, 03_layers or layers); "
                   "default: [student_repository] through in course.toml, else the last module")
    p.add_argument("--force", action="store_true",
                   help="publish the reference code of a module that still takes submissions "
                   "(its due date plus the late window of course.toml [late], or a student's "
                   "extension); the commit message says so")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser(
        "badges", help="the Binder and Colab badges of the student repository",
        description="Print the Markdown badge block of the student repository "
        "([student_repository] in course.toml): Binder on the notebook of module NN, Colab "
        "for notebooks 01..NN. `course publish` puts the same block into the student "
        "README. A placeholder slug stops the command.")
    p.add_argument("--through", metavar="NN",
                   help="the last module released (default: course.toml's, else the last)")
    p.add_argument("--write", metavar="FILE",
                   help="write the block into this Markdown file (in place of its badge "
                   "block, else after its title) instead of printing it")
    p.set_defaults(func=cmd_badges)

    p = sub.add_parser(
        "lab", help="JupyterLab on the student repository, as students get it on Binder",
        description="Start JupyterLab on a student repository in student mode: nbgrader's "
        "assignment list and Validate button only, and the kernel imports that repository's "
        "tinytorch (the modules before the one in hand), not the instructor's. Without DIR, "
        f"previews what `course publish` would write, in {STUDENT_LAB_DIR}/repo in the course "
        "root (written again each time). The instructor's Jupyter settings are not touched.")
    p.add_argument("dir", metavar="DIR", nargs="?",
                   help="a student repository made by `course publish` (default: a preview)")
    p.add_argument("--through", metavar="NN",
                   help="the module the preview is released through (default: course.toml's)")
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="only print the URL")
    p.add_argument("--notebook", metavar="PATH",
                   help="file or folder to open, relative to the repository "
                   "(default: the release folder of the module in hand)")
    p.set_defaults(func=cmd_lab)


def main(argv: list[str] | None = None) -> int:
    """Run ``publish``/``badges``/``lab`` on their own.

    ``python -m coursekit.publishing.lab lab --no-browser``
    """
    parser = argparse.ArgumentParser(prog="python -m coursekit.publishing.lab")
    parser.add_argument("--root", help="course root (default: found from the current folder)")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CourseError as exc:
        print(f"course {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
