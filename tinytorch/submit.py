"""Submit a notebook for grading: the course's grading service grades it as your instructor
does and answers, within seconds, with your score, each failed test and its message.

The last cell of every notebook does it for its own notebook (in JupyterLab it saves the
notebook first; in Colab it takes the notebook from Colab). In a terminal::

    python -m tinytorch.submit release/01_tensor/tensor.ipynb
    python -m tinytorch.submit --forget-token        # ask for the token again next time

The course gives you a token: the first submission asks for it (it is not shown as you
type) and keeps it in ``~/.tinytorch/tokens.json``, readable by you alone, never in the
notebook. ``TINYTORCH_TOKEN`` in the environment is used instead when it is set. When the
service is busy the submission waits and tries again by itself; the number of submissions
per module and hour is limited, and a notebook that did not change since the last one gets
that one's result back without counting again.

Only the standard library is used here: this file runs in the student's environment.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import html
import ipaddress
import json
import os
import random
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Where the token is kept (``$TINYTORCH_HOME/tokens.json``, default ``~/.tinytorch``).
HOME_ENV = "TINYTORCH_HOME"
TOKEN_ENV = "TINYTORCH_TOKEN"
#: The grading service's address, instead of the course's (for a course's own tests).
URL_ENV = "TINYTORCH_SERVICE_URL"
#: Set while ``tinytorch.mine`` runs a notebook: its Submit cell sends nothing.
EXPORTING = "TINYTORCH_MINE_EXPORTING"
TRIES = 6  # sending, when the service is busy or cannot be reached
WAIT = 20  # seconds one question about a submission's result may wait on the service
SAVE_WAIT = 8.0  # seconds to wait for JupyterLab to save the notebook
TOKEN_PROMPT = "Your course token (asked once, kept in ~/.tinytorch, not in the notebook): "
#: In JupyterLab (and Jupyter Notebook 7): save the notebook the cell runs in, as Ctrl-S.
SAVE_JS = """
(function () {
  var app = window.jupyterapp;
  if (app && app.commands && app.commands.hasCommand('docmanager:save')) {
    app.commands.execute('docmanager:save'); return;
  }
  if (window.IPython && window.IPython.notebook) {
    window.IPython.notebook.save_checkpoint(); return;
  }
  var mac = /Mac|iPhone|iPad/.test(navigator.platform);
  var event = new KeyboardEvent('keydown', {key: 's', code: 'KeyS', ctrlKey: !mac,
                                            metaKey: mac, bubbles: true, cancelable: true});
  Object.defineProperty(event, 'keyCode', {get: function () { return 83; }});
  Object.defineProperty(event, 'which', {get: function () { return 83; }});
  (document.activeElement || document.body).dispatchEvent(event);
})();
"""


class SubmitError(Exception):
    """A submission that did not get through; the message, one line, says why."""


# -- where the service is, the token -------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """The course's grading service, as ``course publish`` wrote it into the package."""

    url: str | None
    course: str
    hand_in: str


def service() -> Service:
    """The grading service of this copy of the course (``tinytorch/handin.py``)."""
    try:
        from tinytorch import handin
    except ImportError:
        handin = None
    url = os.environ.get(URL_ENV) or getattr(handin, "SERVICE_URL", None)
    return Service(url.rstrip("/") if url else None, str(getattr(handin, "COURSE", "")),
                   str(getattr(handin, "HAND_IN", "") or
                       "This copy of tinytorch does not know how the course collects "
                       "notebooks: ask your instructor."))


def token_file() -> Path:
    """The file that keeps tokens, one per grading service."""
    base = os.environ.get(HOME_ENV)
    return (Path(base) if base else Path.home() / ".tinytorch") / "tokens.json"


def _tokens() -> dict[str, str]:
    try:
        data = json.loads(token_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def stored_token(url: str) -> str | None:
    """The token for the service at ``url``: ``TINYTORCH_TOKEN``, else the kept one."""
    return os.environ.get(TOKEN_ENV) or _tokens().get(url)


def keep_token(url: str, token: str | None) -> None:
    """Keep (or, with None, forget) the token for ``url``; the file is readable by its
    owner alone."""
    tokens = _tokens()
    if token is None:
        if tokens.pop(url, None) is None:
            return
    else:
        if tokens.get(url) == token:
            return
        tokens[url] = token
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(tokens, out, indent=1)
    os.replace(tmp, path)


# -- talking to the service ------------------------------------------------------------------------


@dataclass
class Answer:
    """What the service answered: the HTTP status, the JSON body, Retry-After in seconds."""

    status: int
    data: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None

    @property
    def message(self) -> str:
        return str(self.data.get("error") or self.data.get("message") or f"HTTP {self.status}")


class Unreachable(Exception):
    """The service could not be reached (no connection, a time-out)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follows no redirect: urllib's own would send the token along to wherever the
    redirect points (another host, or plain http)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def unsafe_url(url: str) -> str | None:
    """Why the token must not be sent to ``url`` (None: it may): plain http is taken only
    for a service on this machine (a course's own tests), never across a network."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return None
    host = parts.hostname or ""
    if parts.scheme == "http":
        try:
            local = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = False
        if local:
            return None
    return (f"the grading service's address {url} is not https://: the token would travel "
            "unencrypted, so nothing was sent. Tell your instructor (course.toml [service] "
            "url)")


def call(method: str, url: str, *, token: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 60) -> Answer:
    """One request to the service; an :class:`Answer` for every HTTP status. A redirect
    is not followed (the token goes to the service's own address only): it is answered as
    an error that names where it pointed."""
    unsafe = unsafe_url(url)
    if unsafe:
        return Answer(0, {"error": unsafe})
    request = urllib.request.Request(url, data=body, method=method, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return _answer(response.status, response.read(), response.headers)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            where = str(exc.headers.get("Location", "") if exc.headers else "")[:200]
            return Answer(exc.code, {"error": f"the grading service answered with a redirect "
                                              f"(HTTP {exc.code}) to {where!r}: not followed, "
                                              "nothing was sent there. Tell your instructor "
                                              "(course.toml [service] url)"})
        return _answer(exc.code, exc.read(), exc.headers)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(str(reason) or type(exc).__name__) from None


def _answer(status: int, raw: bytes, headers: Any) -> Answer:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {"error": f"HTTP {status} (not an answer of the course's grading service)"}
    retry = headers.get("Retry-After") if headers is not None else None
    try:
        after = float(retry) if retry is not None else None
    except ValueError:
        after = None
    return Answer(status, data if isinstance(data, dict) else {}, after)


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before try ``attempt`` (1, 2, ...): at least what the service asked,
    doubling from 2 s up to a minute, with some jitter so that a class does not come back
    all at once."""
    delay = min(60.0, 2.0 ** attempt) * (0.8 + 0.4 * random.random())
    return max(delay, retry_after or 0.0)


class Reporter:
    """Where a submission tells what happens (a terminal here; the notebook below)."""

    def status(self, text: str) -> None:
        """A passing state (sending, waiting): replaced by the next one."""
        print(text, flush=True)

    def error(self, text: str) -> None:
        """Why the submission did not go through, or its result did not come."""
        print(text, file=sys.stderr, flush=True)

    def result(self, data: dict[str, Any], url: str) -> None:
        """The graded submission."""
        print(result_text(data, url), flush=True)


def submit(notebook: bytes, module: str, reporter: Reporter,
           ask: Callable[[], str | None], sleep: Callable[[float], None] = time.sleep,
           token: str | None = None) -> dict[str, Any] | None:
    """Send ``notebook`` (module folder ``module``) to the course's grading service and
    wait for its result; the result (None when there is none, the reason told to
    ``reporter``). ``ask`` asks the student for the token when none is kept (or ``token``
    is given: then it is used, and not kept)."""
    svc = service()
    if not svc.url:
        reporter.error(svc.hand_in)
        return None
    unsafe = unsafe_url(svc.url)
    if unsafe:
        reporter.error(unsafe[0].upper() + unsafe[1:] + ".")
        return None
    given = token is not None
    token = token or stored_token(svc.url)
    asked = given
    if not token:
        token, asked = ask(), True
        if not token:
            reporter.error("No token given: nothing was submitted.")
            return None
    query = urllib.parse.urlencode({"module": module})
    headers = {"Content-Type": "application/x-ipynb+json", "X-Course": svc.course,
               "Idempotency-Key": secrets.token_hex(16)}  # a retry is the same submission
    reporter.status(f"Submitting {module} to {svc.url} ...")
    answer: Answer | None = None
    for attempt in range(1, TRIES + 1):
        try:
            answer = call("POST", f"{svc.url}/api/submissions?{query}", token=token,
                          body=notebook, headers=headers)
        except Unreachable as exc:
            if attempt == TRIES:
                reporter.error(f"The grading service at {svc.url} cannot be reached ({exc}): "
                               "nothing was submitted. Your notebook is saved; try again "
                               "later.")
                return None
            wait = backoff(attempt)
            reporter.status(f"The grading service cannot be reached ({exc}); trying again in "
                            f"{wait:.0f} s (try {attempt + 1} of {TRIES}) ...")
            sleep(wait)
            continue
        if answer.status == 401 and not asked and not os.environ.get(TOKEN_ENV):
            keep_token(svc.url, None)
            reporter.status("The grading service does not know the token kept here.")
            token, asked = ask(), True
            if not token:
                reporter.error("No token given: nothing was submitted.")
                return None
            continue
        if answer.status == 503 and attempt < TRIES:
            wait = backoff(attempt, answer.retry_after)
            reporter.status(f"The grading service is busy ({answer.message}); trying again "
                            f"in {wait:.0f} s (try {attempt + 1} of {TRIES}) ...")
            sleep(wait)
            continue
        break
    assert answer is not None
    if answer.status == 401:
        if not given:
            keep_token(svc.url, None)
        reporter.error(f"{answer.message}: nothing was submitted. Check the token your "
                       "course gave you and run this again.")
        return None
    if answer.status not in (200, 202):
        reporter.error(f"Not submitted: {answer.message}")
        return None
    if not given:
        keep_token(svc.url, token)
    return wait_for_result(svc.url, token, answer.data, reporter, sleep)


def wait_for_result(url: str, token: str, data: dict[str, Any], reporter: Reporter,
                    sleep: Callable[[float], None] = time.sleep) -> dict[str, Any] | None:
    """Ask about an accepted submission until it is graded; its result."""
    number = data.get("attempt")
    again = data.get("again")  # the same notebook as an earlier submission
    started = time.monotonic()
    failures = 0
    while data.get("state") not in ("done", "failed"):
        where = (f", number {data['position']} in the queue" if data.get("position")
                 else "")
        reporter.status(f"Submission {number} of {data.get('module', '')} accepted "
                        f"({data.get('submitted', '')}): {data.get('state', 'waiting')}"
                        f"{where}, {time.monotonic() - started:.0f} s ...")
        try:
            answer = call("GET", f"{url}/api/attempts/{number}?wait={WAIT}", token=token,
                          timeout=WAIT + 30)
        except Unreachable as exc:
            failures += 1
            if failures >= TRIES:
                reporter.error(f"Submission {number} was accepted, but its result cannot be "
                               f"fetched ({exc}); run this again later to see it.")
                return None
            sleep(backoff(failures))
            continue
        if answer.status != 200:
            if answer.status == 503 and failures < TRIES:
                failures += 1
                sleep(backoff(failures, answer.retry_after))
                continue
            reporter.error(f"Submission {number} was accepted, but asking for its result "
                           f"failed: {answer.message}")
            return None
        data = dict(answer.data, again=again) if again else answer.data
    if data.get("state") == "failed":
        reporter.error(f"Submission {number} could not be graded: "
                       f"{data.get('error') or 'the instructor sees why'}")
        return data
    reporter.result(data, url)
    return data


# -- showing a result ------------------------------------------------------------------------------


def _n(x: Any) -> str:
    x = float(x or 0)
    return str(int(x)) if x.is_integer() else f"{x:.2f}"


def result_text(data: dict[str, Any], url: str) -> str:
    """A graded submission as plain text."""
    lines = [f"Submission {data.get('attempt')} of {data.get('module')} by "
             f"{data.get('student')}: {_n(data.get('score'))} / {_n(data.get('max_score'))}"
             + (f" (late {data['late']}: -{_n(data['penalty'])})" if data.get("penalty")
                else "")]
    lines += [f"  {note}" for note in [data.get("again"), *data.get("notes", [])] if note]
    failed = [t for t in data.get("tests", []) if not t.get("passed")]
    passed = len(data.get("tests", [])) - len(failed)
    lines.append(f"  {passed} test(s) passed, {len(failed)} failed")
    for test in failed:
        lines.append(f"  FAILED {test['name']} ({_n(test.get('points'))}/"
                     f"{_n(test.get('max_points'))}): {test.get('message') or ''}".rstrip())
    if data.get("counting"):
        lines.append(f"  {data['counting']}")
    if data.get("feedback"):
        lines.append(f"  Feedback page: {url}{data['feedback']}")
    return "\n".join(lines)


def result_html(data: dict[str, Any], url: str) -> str:
    """A graded submission as HTML (in the notebook)."""
    e = html.escape
    head = (f"<b>Submission {e(str(data.get('attempt')))} of {e(str(data.get('module')))}"
            f"</b> by {e(str(data.get('student')))}: <b>{_n(data.get('score'))} / "
            f"{_n(data.get('max_score'))}</b>")
    if data.get("penalty"):
        head += f" (late {e(str(data.get('late')))}: &minus;{_n(data['penalty'])})"
    rows = []
    for test in data.get("tests", []):
        mark = "&#10004;" if test.get("passed") else "&#10008;"
        colour = "#137333" if test.get("passed") else "#a50e0e"
        rows.append(f"<tr><td style='color:{colour}'>{mark}</td><td><code>"
                    f"{e(test['name'])}</code></td><td>{_n(test.get('points'))}/"
                    f"{_n(test.get('max_points'))}</td><td>{e(test.get('message') or '')}"
                    "</td></tr>")
    notes = "".join(f"<li>{e(str(n))}</li>" for n in [data.get("again"), *data.get("notes", [])]
                    if n)
    parts = [f"<div class='tinytorch-result'><p>{head}</p>"]
    if notes:
        parts.append(f"<ul>{notes}</ul>")
    parts.append("<table><tr><th></th><th>test</th><th>points</th><th>message</th></tr>"
                 + "".join(rows) + "</table>")
    if data.get("counting"):
        parts.append(f"<p>{e(data['counting'])}</p>")
    if data.get("feedback"):
        link = e(url + data["feedback"])
        parts.append(f"<p><a href='{link}' target='_blank' rel='noopener'>Feedback page</a>"
                     " (your notebook with every test's points and message)</p>")
    parts.append("</div>")
    return "".join(parts)


# -- in a notebook -----------------------------------------------------------------------------


class NotebookReporter(Reporter):
    """Shows a submission in the cell's output: one line that changes while it waits, then
    the result as a table."""

    def __init__(self) -> None:
        from IPython.display import display

        self._handle = display({"text/plain": "Submit for grading ..."}, raw=True,
                               display_id=True)

    def _show(self, text: str, markup: str) -> None:
        if self._handle is not None:
            self._handle.update({"text/plain": text, "text/html": markup}, raw=True)

    def status(self, text: str) -> None:
        self._show(text, f"<p>{html.escape(text)}</p>")

    def error(self, text: str) -> None:
        self._show(text, f"<p style='color:#a50e0e'>{html.escape(text)}</p>")

    def result(self, data: dict[str, Any], url: str) -> None:
        self._show(result_text(data, url), result_html(data, url))


def interactive() -> bool:
    """Whether a person runs this notebook (JupyterLab, Notebook or Colab), not a tool
    (nbgrader's Validate and grader, ``tinytorch.mine``, nbclient), which asks no input."""
    if os.environ.get(EXPORTING):
        return False
    if "google.colab" in sys.modules:
        return True
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None) if ipython is not None else None
    shell = get() if get is not None else None
    kernel = getattr(shell, "kernel", None)
    return bool(kernel is not None and getattr(kernel, "_allow_stdin", False))


def notebook_path(folder: str) -> Path:
    """The notebook file this kernel runs (JupyterLab names it in ``JPY_SESSION_NAME``),
    else the module's notebook in the current folder."""
    candidates = []
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session:
        path = Path(session)
        candidates.append(path if path.is_absolute() else Path.cwd() / path.name)
    candidates.append(Path.cwd() / f"{folder[3:]}.ipynb")
    for path in candidates:
        if path.suffix == ".ipynb" and path.is_file():
            return path
    raise SubmitError(f"Cannot find this notebook's file ({folder[3:]}.ipynb in {Path.cwd()}): "
                      f"save it, then run `python -m tinytorch.submit NOTEBOOK` in a terminal.")


def _colab_notebook() -> bytes:
    from google.colab import _message  # type: ignore[import-not-found]

    reply = _message.blocking_request("get_ipynb", request="", timeout_sec=60)
    if not reply or "ipynb" not in reply:
        raise SubmitError("Colab did not hand over the notebook; try again, or download it "
                          "and run `python -m tinytorch.submit NOTEBOOK`.")
    return json.dumps(reply["ipynb"]).encode("utf-8")


def save_and_read(path: Path, reporter: Reporter) -> bytes:
    """Ask JupyterLab to save the notebook, wait until the file changes, read it. If it
    does not change (a front end that runs no JavaScript), the file as last saved."""
    from IPython.display import Javascript, display

    before = path.stat().st_mtime_ns
    handle = display(Javascript(SAVE_JS), display_id=True)
    deadline = time.monotonic() + SAVE_WAIT
    saved = False
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if path.stat().st_mtime_ns != before:
            saved = True
            break
    if handle is not None:  # the script has done its work; it must not run again on reload
        handle.update({"text/plain": ""}, raw=True)
    if not saved:
        stamp = datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%H:%M:%S")
        reporter.status(f"This cell could not save the notebook: submitting {path.name} as "
                        f"saved at {stamp} (save it, Ctrl-S, and run this cell again if you "
                        "changed it since).")
        time.sleep(1)
    return path.read_bytes()


def _ask_in_notebook() -> str | None:
    import getpass

    try:
        token = getpass.getpass(TOKEN_PROMPT).strip()
    except Exception:  # noqa: BLE001 - a front end that cannot ask (no input)
        return None
    return token or None


def notebook_cell(folder: str) -> None:
    """What the Submit cell of module ``folder``'s notebook does: nothing but a line when a
    tool runs the notebook (grading, Validate, an export); in JupyterLab and Colab, submit
    the notebook as it stands and show the result."""
    if not interactive():
        print("Submit for grading: nothing sent (this notebook is being run by a tool, not "
              "opened by you).")
        return
    if not service().url:
        print(service().hand_in)
        return
    reporter = NotebookReporter()
    try:
        if "google.colab" in sys.modules:
            data = _colab_notebook()
        else:
            data = save_and_read(notebook_path(folder), reporter)
    except SubmitError as exc:
        reporter.error(str(exc))
        return
    submit(data, folder, reporter, _ask_in_notebook)


# -- command line ------------------------------------------------------------------------------


def module_of(path: Path) -> str | None:
    """The module folder (``01_tensor``) a notebook belongs to: its folder's name, else the
    notebook's name among the course's modules."""
    modules: list[str] = []
    with contextlib.suppress(ImportError):
        from tinytorch.core import MODULES

        modules = list(MODULES)
    parent = path.resolve().parent.name
    if parent in modules or (not modules and parent[:2].isdigit() and parent[2:3] == "_"):
        return parent
    stem = path.stem.lower()
    for folder in modules:
        if stem == folder[3:] or stem.startswith(folder[3:] + "-") or stem == folder:
            return folder
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m tinytorch.submit``: submit a notebook for grading from a terminal."""
    parser = argparse.ArgumentParser(
        prog="python -m tinytorch.submit",
        description="Send a notebook to the course's grading service and show its score, "
        "each failed test and its message, and a link to its feedback page. The first time "
        "it asks for your course token and keeps it in ~/.tinytorch (TINYTORCH_TOKEN in the "
        "environment is used instead when set).")
    parser.add_argument("notebook", nargs="?", metavar="NOTEBOOK",
                        help="the notebook file, e.g. release/01_tensor/tensor.ipynb")
    parser.add_argument("--module", metavar="NN_name",
                        help="the module it is (default: from its folder or name)")
    parser.add_argument("--forget-token", action="store_true",
                        help="forget the kept token (the next submission asks again)")
    args = parser.parse_args(argv)
    svc = service()
    if args.forget_token:
        if svc.url:
            keep_token(svc.url, None)
        print(f"tinytorch.submit: token forgotten ({token_file()})")
        if not args.notebook:
            return 0
    if not args.notebook:
        parser.error("give the NOTEBOOK to submit")
    path = Path(args.notebook)
    if not path.is_file():
        print(f"tinytorch.submit: error: NOTEBOOK {path}: no such file", file=sys.stderr)
        return 1
    module = args.module or module_of(path)
    if not module:
        print(f"tinytorch.submit: error: NOTEBOOK {path}: cannot tell which module it is; "
              "give --module NN_name (e.g. --module 01_tensor)", file=sys.stderr)
        return 1

    def ask() -> str | None:
        import getpass

        try:
            return getpass.getpass(TOKEN_PROMPT).strip() or None
        except (EOFError, KeyboardInterrupt):
            return None

    result = submit(path.read_bytes(), module, Reporter(), ask)
    return 0 if result is not None and result.get("state") == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
