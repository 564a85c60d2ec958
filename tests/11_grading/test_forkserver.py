"""Kernels forked from the grading worker's fork server behave as kernels started anew.

Each check runs a small notebook in a separate Python process, once with kernels started
the usual way, once with kernels forked from a plain fork server (``--no-sandbox``) and
once from the sandboxed one, and compares what the kernels saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = r'''
import json, os, resource, sys
import matplotlib, numpy as np
from ipykernel.kernelapp import IPKernelApp
app = IPKernelApp.instance()

import stat

def pipes():  # (a sandboxed kernel has no /proc to list them from)
    out = []
    for fd in range(3, 1024):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                out.append(fd)
        except OSError:
            pass
    return out

facts = {
    "cwd": os.getcwd(), "path0": sys.path[0], "argv0": os.path.basename(sys.argv[0]),
    "parent_handle": app.parent_handle, "ppid_is_parent": os.getppid() == app.parent_handle,
    "jpy_parent": os.environ.get("JPY_PARENT_PID") == str(app.parent_handle),
    "session_leader": os.getsid(0) == os.getpid(),
    "stdin": "pipe" if stat.S_ISFIFO(os.fstat(0).st_mode) else "other",
    "mplbackend": os.environ.get("MPLBACKEND"), "backend": matplotlib.get_backend(),
    "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0],
    "marker": os.environ.get("PROBE_MARKER"), "nbgrader": os.environ.get("NBGRADER_EXECUTION"),
    "random": float(np.random.random()), "pid": os.getpid(),
    "pipes_open": pipes(),
}
print(json.dumps(facts))
'''

RUNNER = r'''
import asyncio, json, os, sys, time
import nbformat, nbclient
from coursekit.course import Course
from coursekit.grading.execution import kernelserver
from coursekit.grading.execution.limits import LimitedKernelManager

mode, folder = sys.argv[1], sys.argv[2]
if mode != "spawn":
    course = Course(os.getcwd())
    module = next(m for m in course.modules() if m.folder == "02_activations")
    server = kernelserver.serve(course, module, sandboxed=(mode == "sandbox"))
if mode == "fork-other-env":
    os.environ["PROBE_MARKER"] = "m2"   # differs from the fork server's start-up environment
if mode == "fork-server-killed":
    server.proc.kill()
    server.proc.wait()
os.environ["NBGRADER_EXECUTION"] = "autograde"   # set per run, as nbgrader does
out = []
for _ in range(2):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(sys.stdin.read() if not out else PROBE),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"),
    ])
    PROBE = nb.cells[0].source
    km = LimitedKernelManager(kernel_name="python3")
    km.launcher_options = {"memory_mb": 1024, "guard": True}
    nbclient.NotebookClient(nb, km=km, timeout=60,
                            resources={"metadata": {"path": folder}}).execute()
    facts = json.loads(nb.cells[0].outputs[-1]["text"])
    facts["image"] = any("image/png" in o.get("data", {}) for o in nb.cells[1].outputs)
    process = km.provisioner.process
    asyncio.run(km.shutdown_kernel())
    facts["exit_code"] = process.returncode
    facts["reaped"] = not km.provisioner.has_process
    out.append(facts)
server = kernelserver.current()
print(json.dumps({"kernels": out, "launched": server.launched if server else 0,
                  "refused": server.refused if server else []}))
'''


def run(mode: str, folder: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), PROBE_MARKER="m1",
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    env.pop("PYTEST_CURRENT_TEST", None)  # ipykernel changes how it captures output under it
    done = subprocess.run([sys.executable, "-c", RUNNER, mode, str(folder)], input=PROBE,
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"stderr": done.stderr[-3000:]}


# How a kernel ends after its notebook ran and it was asked to shut down depends on timing:
# it exits, or jupyter_client's SIGTERM ends it when it takes longer than 2.5 s, or it aborts
# on its own way out (CPython aborts when a daemon thread holds stderr as the interpreter
# finalizes, python/cpython#129536), or, forked, it was already reaped by the fork server's
# stop (-1). What matters is that it ended and nothing of it is left: an exit code, reaped.


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("notebook-folder")
    modes = ("spawn", "fork", "sandbox", "fork-other-env", "fork-server-killed")
    return {mode: run(mode, folder) for mode in modes} | {"folder": str(folder)}


def test_kernels_were_forked(probes: dict) -> None:
    assert probes["spawn"]["launched"] == 0
    assert probes["fork"]["launched"] == 2 and probes["sandbox"]["launched"] == 2


def test_forked_kernel_sees_what_a_new_kernel_sees(probes: dict) -> None:
    same = ("cwd", "path0", "jpy_parent", "session_leader", "stdin",
            "mplbackend", "backend", "rlimit_as", "marker", "nbgrader", "image", "reaped")
    for spawned, forked in zip(probes["spawn"]["kernels"], probes["fork"]["kernels"],
                               strict=True):
        differ = {k: (forked[k], spawned[k]) for k in same if forked[k] != spawned[k]}
        assert not differ, f"(forked, spawned): {differ}"
    first = probes["fork"]["kernels"][0]
    assert first["cwd"] == first["path0"] == probes["folder"]
    assert first["session_leader"] and first["image"]
    assert first["stdin"] == "pipe"
    # ipykernel's own pipes and the other end of stdin: nothing of the fork server's
    spawned_pipes = probes["spawn"]["kernels"][0]["pipes_open"]
    assert len(first["pipes_open"]) == len(spawned_pipes) + 1, (first, spawned_pipes)
    for kernel in probes["fork"]["kernels"] + probes["spawn"]["kernels"]:
        assert kernel["exit_code"] is not None and kernel["reaped"], \
            (kernel, probes["fork"]["stderr"], probes["spawn"]["stderr"])
    assert first["rlimit_as"] == 1024 * 1024 * 1024
    assert first["mplbackend"] == "module://matplotlib_inline.backend_inline"
    assert (first["marker"], first["nbgrader"]) == ("m1", "autograde")


def test_sandboxed_kernel_works_as_a_new_kernel(probes: dict) -> None:
    """In the sandbox: the same kernel set-up, in its own folder copy and environment."""
    same = ("session_leader", "stdin", "mplbackend", "backend", "rlimit_as", "nbgrader",
            "image", "reaped")
    for spawned, boxed in zip(probes["spawn"]["kernels"], probes["sandbox"]["kernels"],
                              strict=True):
        differ = {k: (boxed[k], spawned[k]) for k in same if boxed[k] != spawned[k]}
        assert not differ, f"(sandboxed, spawned): {differ}"
        assert boxed["cwd"] == boxed["path0"] == "/home/student/" + Path(probes["folder"]).name
        assert boxed["marker"] is None  # nothing of the grader's environment
        assert boxed["pid"] == 1 and boxed["exit_code"] is not None and boxed["reaped"]
    a, b = probes["sandbox"]["kernels"]
    assert a["random"] != b["random"]


def test_forked_kernels_are_separate_processes(probes: dict) -> None:
    a, b = probes["fork"]["kernels"]
    assert a["pid"] != b["pid"]
    assert a["random"] != b["random"]  # NumPy's global state is seeded afresh in each


def test_a_kernel_environment_the_server_did_not_start_with_is_not_forked(probes: dict) -> None:
    other = probes["fork-other-env"]
    assert other["launched"] == 0
    assert other["refused"] == ["kernel environment differs in ['PROBE_MARKER']"]
    assert [k["marker"] for k in other["kernels"]] == ["m2", "m2"]  # started the usual way


def test_kernels_are_started_the_usual_way_when_the_fork_server_is_gone(probes: dict) -> None:
    gone = probes["fork-server-killed"]
    assert gone["launched"] == 0
    assert gone["refused"] and gone["refused"][0].startswith("the fork server stopped")
    assert [k["marker"] for k in gone["kernels"]] == ["m1", "m1"]
    assert all(k["image"] and k["exit_code"] is not None for k in gone["kernels"])
