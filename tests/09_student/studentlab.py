"""Helpers of the student end-to-end test: a published student repository, its Binder
environment, JupyterLab, the browser.

* :func:`publish_student_repository` writes the student repository ``course publish``
  makes (the same tree, leak guard included; without git, so the placeholder slug of the
  course file does not stop it).
* :func:`binder_venv` replays repo2docker's install of that repository's
  ``binder/requirements.txt`` in a fresh virtual environment, kept in a cache folder keyed
  by the hash of its Binder files, and :func:`run_postbuild` runs its ``binder/postBuild``
  there, with the fresh environment first on PATH.
* :class:`LabServer` starts JupyterLab from that environment on a free loopback port.
* :class:`Lab` drives JupyterLab in a Playwright page: open files, set cell text by
  typing, run all cells, press nbgrader's Validate button.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BINDER_FILES = ("requirements.txt", "runtime.txt", "postBuild", "student-mode.json")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DEFAULT_TARGET = "08_training"


# -- the student repository --------------------------------------------------------------------


def publish_student_repository(dest: Path, module: str) -> Path:
    """The student repository released through ``module`` (e.g. ``08_training``) in ``dest``."""
    from coursekit.course import Course
    from coursekit.publishing.publish import publish

    publish(Course(REPO), dest, module, preview=True, log=lambda line: None)
    return dest


def pinned(repo: Path) -> dict[str, str]:
    """``name -> version`` of the repository's binder/requirements.txt (names normalised)."""
    pins = {}
    for line in (repo / "binder" / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_normal(name)] = version
    return pins


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def installed(venv: Path) -> dict[str, str]:
    """``name -> version`` of what ``pip freeze`` lists in ``venv`` (editable installs aside)."""
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze",
                          "--exclude-editable", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        if "==" in line:
            name, version = line.split("==")
            found[_normal(name)] = version
    return found


# -- the Binder environment --------------------------------------------------------------------


def binder_key(repo: Path) -> str:
    """Hash of what the fresh environment is made from: the Binder files and this Python."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version_info[:2]} {sys.platform}".encode())
    for name in BINDER_FILES:
        digest.update(name.encode() + b"\0" + (repo / "binder" / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """Where fresh Binder environments are kept between runs (``COURSE_BINDER_CACHE``)."""
    explicit = os.environ.get("COURSE_BINDER_CACHE")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tinytorch-course" / "binder-venv"


@contextlib.contextmanager
def locked(path: Path, timeout: float = 900.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (other test runs on this machine wait for it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{path}: still locked by another run after {timeout} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def runtime_python(repo: Path) -> str:
    """Check binder/runtime.txt against this Python and return the interpreter to use."""
    wanted = (repo / "binder" / "runtime.txt").read_text().strip()
    if not wanted.startswith("python-"):
        raise AssertionError(f"binder/runtime.txt: expected 'python-X.Y', got {wanted!r}")
    have = f"python-{sys.version_info[0]}.{sys.version_info[1]}"
    if have != wanted:
        print(f"note: binder/runtime.txt asks for {wanted}; this test uses {have}")
    return sys.executable


def binder_venv(log: Path, repo: Path) -> Path:
    """A virtual environment with ``repo``'s ``binder/requirements.txt`` installed (cached
    by hash).

    The caller holds :func:`locked` on the cache folder. A finished environment carries a
    ``.complete`` marker; anything else in the cache folder is removed.
    """
    root = cache_root()
    venv = root / binder_key(repo)
    if (venv / ".complete").is_file() and (venv / "bin" / "python").exists():
        print(f"binder venv: reusing {venv} (binder/ files unchanged)")
        return venv
    for old in root.iterdir() if root.is_dir() else []:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    started = time.monotonic()
    print(f"binder venv: creating {venv}, installing binder/requirements.txt")
    _run([runtime_python(repo), "-m", "venv", str(venv)], log)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
          "-r", str(repo / "binder" / "requirements.txt")], log, timeout=900)
    (venv / ".complete").write_text(binder_key(repo) + "\n")
    print(f"binder venv: ready in {time.monotonic() - started:.0f} s")
    return venv


def isolated_env(venv: Path, home: Path) -> dict[str, str]:
    """Environment of a process of the fresh venv: its bin first, private Jupyter folders."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "PYTHON", "VIRTUAL_ENV", "IPYTHON", "CONDA"))}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "/usr/bin:/bin")])
    env["VIRTUAL_ENV"] = str(venv)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        env[var] = str(home / sub)
        (home / sub).mkdir(parents=True, exist_ok=True)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env


def _run(cmd: list[str], log: Path, cwd: Path | None = None,
         env: dict[str, str] | None = None, timeout: float = 600) -> None:
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:])
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}; end of {log}:\n{tail}")


def release_notebook(module: str) -> str:
    """``release/NN_name/name.ipynb`` of a module folder name such as ``01_tensor``."""
    return f"release/{module}/{module[3:]}.ipynb"


def default_target(repo: Path = REPO) -> str:
    """The module the test drives: ``STUDENT_TEST_MODULE``, else 08 training if it exists,
    else the last module that has a module file."""
    explicit = os.environ.get("STUDENT_TEST_MODULE")
    if explicit:
        return explicit
    folders = sorted(p.name for p in (repo / "modules").glob("[0-9][0-9]_*")
                     if (p / f"{p.name[3:]}.py").is_file())
    if DEFAULT_TARGET in folders or not folders:
        return DEFAULT_TARGET
    return folders[-1]


def run_postbuild(venv: Path, repo: Path, home: Path, log: Path) -> None:
    """Run ``binder/postBuild`` as repo2docker does: from the repository root, bash."""
    _run(["bash", "binder/postBuild"], log, cwd=repo, env=isolated_env(venv, home))


# -- JupyterLab --------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LabServer:
    """JupyterLab of the fresh environment on a loopback port, rooted at the repository."""

    def __init__(self, venv: Path, root: Path, home: Path, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.venv, self.root, self.home, self.log = venv, root, home, log
        self.env = dict(env or {})  # on top of the fresh environment's own
        self.port = free_port()
        self.token = os.urandom(16).hex()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: Any = None

    def start(self, timeout: float = 90) -> None:
        """Start ``jupyter lab`` and wait until it answers."""
        cmd = [str(self.venv / "bin" / "jupyter"), "lab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
               "--ServerApp.port_retries=0", f"--ServerApp.root_dir={self.root}",
               f"--IdentityProvider.token={self.token}"]
        if os.geteuid() == 0:  # containers and CI machines often run as root
            cmd.append("--allow-root")
        self._out = open(self.log, "a", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        # cwd = repository root, as on Binder (nbgrader's Validate reads its config there)
        self.proc = subprocess.Popen(cmd, cwd=self.root,
                                     env={**isolated_env(self.venv, self.home), **self.env},
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyter lab exited {self.proc.returncode}; see {self.log}")
            try:
                self.api("GET", "/api/status")
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        raise AssertionError(f"jupyter lab did not answer within {timeout} s; see {self.log}")

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        """Call the server's REST API with the token; return the decoded JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Authorization": f"token {self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def url(self, path: str) -> str:
        """Browser URL that opens ``path`` in a fresh workspace (``reset``), with the token."""
        return f"{self.base}/lab/tree/{path}?reset&token={self.token}"

    def notebook(self, path: str) -> dict[str, Any]:
        """The saved notebook at ``path`` (relative to the root), as nbformat JSON."""
        return self.api("GET", f"/api/contents/{path}?content=1")["content"]

    def stop(self) -> None:
        """Stop the server and every process it started (kernels), whatever their state."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.api("POST", "/api/shutdown", timeout=5)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)
        if self._out is not None:
            self._out.close()


# -- the browser -------------------------------------------------------------------------------


def browser_problem() -> str | None:
    """Why no browser test can run here (None when Chromium and Playwright are present)."""
    if not Path(CHROMIUM).is_file():
        return (f"no Chromium at {CHROMIUM}: run `bash scripts/install-browser` "
                "(or set CHROMIUM_PATH)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -r requirements.txt)"
    return None


def solution_sources(source_notebook: Path) -> dict[str, str]:
    """``grade_id -> source`` of every solution cell of an nbgrader source notebook."""
    nb = json.loads(source_notebook.read_text(encoding="utf-8"))
    return {
        cell["metadata"]["nbgrader"]["grade_id"]: _text(cell["source"])
        for cell in nb["cells"]
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution")
    }


def completed_notebook(release_nb: Path, source_nb: Path) -> dict[str, Any]:
    """A release notebook with every solution cell written in, as a student who finished it
    saves it: the reference solutions, without nbgrader's region markers."""
    solutions = {gid: "\n".join(line for line in text.splitlines()
                                if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line)
                 for gid, text in solution_sources(source_nb).items()}
    nb = json.loads(release_nb.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if grade_id(cell) in solutions:
            cell["source"] = solutions[grade_id(cell)]
    return nb


def export_modules(venv: Path, repo: Path, home: Path, log: Path, work: Path) -> None:
    """Complete every released notebook (copies under ``work``) and export them all with
    the student environment's ``python -m tinytorch.mine``, as a student does in a terminal
    of their JupyterLab."""
    args = []
    for folder in sorted(p.name for p in (repo / "release").iterdir() if p.is_dir()):
        name = folder[3:]
        copy = work / folder / f"{name}.ipynb"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(json.dumps(completed_notebook(
            repo / "release" / folder / f"{name}.ipynb",
            REPO / "source_notebooks" / folder / f"{name}.ipynb")), encoding="utf-8")
        args += [folder[:2], str(copy)]
    _run([str(venv / "bin" / "python"), "-m", "tinytorch.mine", *args], log, cwd=repo,
         env=isolated_env(venv, home), timeout=900)


def printed_text(nb: dict[str, Any]) -> str:
    """What the code cells of a saved notebook printed."""
    return "".join(_text(out.get("text", "")) for cell in nb["cells"]
                   if cell["cell_type"] == "code" for out in cell.get("outputs", [])
                   if out["output_type"] == "stream")


def _text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


def grade_id(cell: dict[str, Any]) -> str | None:
    """The nbgrader grade_id of a notebook cell, or None."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_solution(cell: dict[str, Any]) -> bool:
    """True for an nbgrader solution cell."""
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def problem_outputs(nb: dict[str, Any]) -> list[str]:
    """Error outputs and stderr streams of a saved notebook, one line each."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if out["output_type"] == "error":
                found.append(f"cell {index} ({grade_id(cell)}): {out['ename']}: {out['evalue']}")
            elif out["output_type"] == "stream" and out.get("name") == "stderr":
                found.append(f"cell {index} ({grade_id(cell)}): stderr: {_text(out['text'])[:300]}")
    return found


class Lab:
    """JupyterLab in one Playwright page: what a student does, through the UI."""

    def __init__(self, page: Any, server: LabServer, shots: Path) -> None:
        self.page, self.server, self.shots = page, server, shots

    def screenshot(self, name: str) -> Path:
        """Save a screenshot of the whole window under the artefacts folder."""
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        print(f"screenshot: {path}")
        return path

    def open(self, path: str, cells: int | None = None) -> None:
        """Open ``path`` by URL and wait for its kernel (and, if given, all its cells)."""
        self.page.goto(self.server.url(path))
        self.wait_notebook(cells)

    def wait_notebook(self, cells: int | None = None, timeout: float = 90) -> None:
        """Wait for the current notebook's cells and an idle kernel."""
        self.page.wait_for_selector(".jp-NotebookPanel:visible .jp-Cell", timeout=timeout * 1000)
        if cells:
            # cells are attached to the page in the background after the first screenful
            self.page.wait_for_function(
                "n => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
                ".jp-Cell').length >= n", arg=cells, timeout=timeout * 1000)
        self.page.wait_for_selector(
            ".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator[data-status='idle']",
            timeout=timeout * 1000)

    def cell(self, index: int) -> Any:
        """The locator of cell ``index`` of the visible notebook."""
        return self.page.locator(
            f".jp-NotebookPanel:visible .jp-Cell[data-windowed-list-index='{index}']")

    def set_cell_text(self, index: int, text: str) -> None:
        """Replace a cell's text as a person would: select it, edit mode, select all, type."""
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").click()  # selects the cell, command mode
        self.page.keyboard.press("Enter")  # edit mode
        cell.locator(".cm-editor.cm-focused").wait_for(timeout=10_000)
        self.page.keyboard.press("Control+a")
        self.page.keyboard.insert_text(text)
        self.page.keyboard.press("Escape")  # back to command mode

    def save(self) -> None:
        """Save the notebook (Ctrl+S) and wait until JupyterLab says it is saved."""
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function(
            "() => !document.querySelector("
            "'.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current.jp-mod-dirty')",
            timeout=30_000)

    def menu(self, top: str, item: str) -> None:
        """Click ``top`` in the menu bar, then ``item`` in its menu."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
        self.page.locator(".lm-Menu-itemLabel", has_text=item).first.click()

    def menu_items(self, top: str) -> list[str]:
        """Labels of the menu ``top`` (the menu is closed again)."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
        labels = self.page.locator(".lm-Menu:visible .lm-Menu-itemLabel").all_inner_texts()
        self.page.keyboard.press("Escape")
        return [label for label in labels if label.strip()]

    def run_all(self, timeout: float = 180) -> None:
        """Run > Run All Cells, then wait until no cell is running and the kernel is idle."""
        self.menu("Run", "Run All Cells")
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            busy = self.page.locator(".jp-NotebookPanel:visible .jp-InputPrompt",
                                     has_text="[*]").count()
            idle = self.page.locator(".jp-NotebookPanel:visible "
                                     ".jp-Notebook-ExecutionIndicator[data-status='idle']").count()
            quiet = quiet + 1 if (not busy and idle) else 0
            if quiet >= 3:
                return
            time.sleep(0.5)
        raise AssertionError(f"Run All Cells still running after {timeout} s")

    def error_outputs_shown(self) -> int:
        """How many error or stderr outputs the visible notebook shows."""
        return self.page.locator(
            ".jp-NotebookPanel:visible .jp-OutputArea-output"
            "[data-mime-type='application/vnd.jupyter.stderr']").count()

    def validate(self, shot: str, timeout: float = 240) -> tuple[str, str]:
        """Press nbgrader's Validate button; return (verdict, dialog text).

        The verdict is ``success``, ``failed``, ``changed``, ``error`` (the validate
        command itself failed) or ``unknown``; the dialog is screenshotted and closed.
        """
        self.page.locator(".jp-NotebookPanel:visible .validate-button").click()
        dialog = self.page.locator(".jp-Dialog")
        dialog.wait_for(timeout=timeout * 1000)
        text = dialog.inner_text()
        verdict = "unknown"
        for name in ("success", "failed", "changed", "passed"):
            # the class sits on the dialog body's own node
            if dialog.locator(f".validation-{name}").count():
                verdict = name
                break
        else:
            if "There was an error running the validate command" in text:
                verdict = "error"
        self.screenshot(shot)
        dialog.locator("button", has_text="Ok").click()
        dialog.wait_for(state="detached", timeout=10_000)
        return verdict, text
