"""The grading sandbox is really on: a kernel lists what it can see and reach.

Kernels are started exactly as grading starts them (``kernelserver.serve`` for a module, then
nbclient with the grader's kernel manager), each runs a probe notebook, and the test
compares what the probe saw with what the sandbox promises (coursekit/grading/execution/sandbox.py,
coursekit/grading/execution/kernel/isolate.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import nbclient
import nbformat
import pytest

from coursekit.course import Course
from coursekit.grading.execution import kernelserver
from coursekit.grading.execution import sandbox as sb
from coursekit.grading.execution.limits import LimitedKernelManager

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

PROBE = r'''
import json, os, socket, sys
def _open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False
facts = {"root": sorted(os.listdir("/")), "uid": os.getuid(), "pid": os.getpid(),
         "cwd": os.getcwd(), "cwd_files": sorted(os.listdir(".")), "env": dict(os.environ),
         "tmp": sorted(os.listdir("/tmp")),
         "home_files": sorted(os.listdir(os.path.expanduser("~")))}
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
facts["bounding_caps"] = [c for c in range(41) if libc.prctl(23, c, 0, 0, 0) == 1]  # CAPBSET_READ
facts["no_new_privs"] = libc.prctl(39, 0, 0, 0, 0)  # PR_GET_NO_NEW_PRIVS
try:
    os.chroot("/")
    facts["chroot"] = "allowed"
except OSError as exc:
    facts["chroot"] = type(exc).__name__
facts["interfaces"] = sorted(name for _, name in socket.if_nameindex())
facts["proc"] = sorted(os.listdir("/proc"))
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=3).close()
    facts["loopback"] = "connected"
except OSError as exc:
    facts["loopback"] = type(exc).__name__
facts["visible"] = {p: sorted(os.listdir(p)) if os.path.isdir(p) else os.path.exists(p)
                    for p in PATHS}
facts["in_tmp_env"] = open(TMP_ENV_FILE).read()
import tinytorch.core, pkgutil
facts["package"] = sorted(m.name for m in pkgutil.iter_modules(tinytorch.core.__path__))
facts["writable"] = {}
for p in ["/usr/probe", "/etc/probe", "/opt/grader/probe", "/probe", "/run/grader-stage/probe",
          os.path.join(sys.prefix, "probe"), TMP_ENV_FILE + ".probe"]:
    try:
        open(p, "w").close()
        facts["writable"][p] = True
    except OSError:
        facts["writable"][p] = False
server_environ = []
me = os.readlink("/proc/self") if os.path.exists("/proc/self") else ""
for pid in [p for p in os.listdir("/proc") if p.isdigit() and p != me]:
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    if b"forkserver" in cmd and not cmd.split(b"\0")[0].endswith(b"bwrap"):
        try:
            open(f"/proc/{pid}/environ", "rb").read()
            server_environ.append("read")
        except OSError:
            server_environ.append("refused")
facts["server_environ"] = server_environ
facts["dev"] = sorted(os.listdir("/dev"))
facts["shm"] = sorted(os.listdir("/dev/shm"))
facts["run_writable"] = {}
for p in ["/dev/probe", "/run/grader/probe"]:
    try:
        open(p, "w").close()
        facts["run_writable"][p] = True
    except OSError:
        facts["run_writable"][p] = False
import subprocess
facts["setsid"] = subprocess.run([sys.executable, "-c", "import os; os.setsid()"],
                                 capture_output=True, text=True).returncode
import stat
facts["fds"] = sorted({stat.S_IFMT(os.fstat(fd).st_mode) for fd in range(1024)
                       if _open(fd)})
for path in ("/tmp/left-by-kernel", os.path.expanduser("~/left-in-home"), "written-in-cwd",
             "/dev/shm/left-by-kernel"):
    with open(path, "w") as fh:
        fh.write("x")
print(json.dumps(facts))
'''


@pytest.fixture()
def course() -> Iterator[Course]:
    yield Course(REPO)
    kernelserver.stop()


def run_probe(folder: Path, port: int, paths: list[str], tmp_env_file: Path) -> dict:
    code = (PROBE.replace("PORT", str(port)).replace("PATHS", repr(paths))
            .replace("TMP_ENV_FILE", repr(str(tmp_env_file))))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    km = LimitedKernelManager(kernel_name="python3")
    km.launcher_options = {"memory_mb": 1024, "guard": True}
    try:
        nbclient.NotebookClient(nb, km=km, timeout=60,
                                resources={"metadata": {"path": str(folder)}}).execute()
    finally:  # a kernel manager given to nbclient is not shut down by it
        asyncio.run(km.shutdown_kernel(now=True))
    texts = [o.get("text", "") for o in nb.cells[0].outputs if o.get("name") == "stdout"]
    assert texts, nb.cells[0].outputs
    return json.loads(texts[-1])


def test_a_sandboxed_kernel_sees_and_reaches_only_its_own(
        course: Course, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = next(m for m in course.modules() if m.folder == "03_layers")
    # a Python environment may live in /tmp (a fresh clone there, as CI makes): the
    # kernel's own /tmp must not hide it
    env_dir = tmp_path / "python-env"
    env_dir.mkdir()
    (env_dir / "site.txt").write_text("part of the Python environment")
    dirs = sb._python_dirs()
    monkeypatch.setattr(sb, "_python_dirs", lambda: [*dirs, str(env_dir)])
    folder = tmp_path / "autograded" / "someone" / module.folder
    folder.mkdir(parents=True)
    (folder / "data.txt").write_text("the submission's own file")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    secret = "probe-secret-7d1f"
    os.environ["NBGRADER_DB_PASSWORD"] = secret  # the instructor's shell, seen by the grader
    os.environ["JPY_API_TOKEN"] = secret
    paths = [str(REPO), str(REPO / "modules"), str(REPO / "source_notebooks"),
             str(tmp_path), str(folder), str(Path.home()), "/root", "/var", "/srv"]
    try:
        server = kernelserver.serve(course, module, sandboxed=True)
        assert server is not None and server.sandboxed
        first = run_probe(folder, port, paths, env_dir / "site.txt")
        second = run_probe(folder, port, paths, env_dir / "site.txt")
    finally:
        del os.environ["NBGRADER_DB_PASSWORD"], os.environ["JPY_API_TOKEN"]
        listener.close()

    # only the system, the sandbox's own folders and the Python environment
    allowed_top = {"bin", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "opt",
                   "proc", "run", "sbin", "tmp", "usr"}
    allowed_top |= {Path(p).parts[1] for p in sb._python_dirs()}  # e.g. root/.pyenv, work/.venv
    assert first["in_tmp_env"] == second["in_tmp_env"] == "part of the Python environment"
    assert set(first["root"]) <= allowed_top, first["root"]
    # of the course, the grading folders and the home folders: only the path down to the
    # Python environment (say /work/course/.venv when the virtual environment lives there)
    python = [Path(p) for p in sb._python_dirs()]
    for path, seen in first["visible"].items():
        towards = {d.relative_to(path).parts[0] for d in python if d.is_relative_to(path)
                   and d != Path(path)}
        assert seen is False or (isinstance(seen, list) and set(seen) <= towards), (path, seen)
    # the reference package: modules before 03 only (01 tensor, 02 activations)
    assert first["package"] == ["activations", "tensor"]
    # its own user, process 1 of its own PID namespace, no capability, no way to gain one
    assert first["uid"] == sb.UID and first["pid"] == 1
    assert first["bounding_caps"] == [] and first["no_new_privs"] == 1
    assert first["chroot"] == "PermissionError"
    # no /proc once it is set up (through /proc/self/mem a process reads its own memory)
    assert first["proc"] == [] and first["server_environ"] == []
    # no network: its own namespace, nothing but a loopback that is down
    assert first["interfaces"] == ["lo"] and first["loopback"] != "connected"
    # a clean environment: nothing of the grading process, whatever the name
    assert secret not in json.dumps(first["env"])
    ours = set(sb.kernel_env()) | set(kernelserver.SANDBOX_PASS_ENV) | {"JPY_PARENT_PID", "PWD"}
    from_grader = {k for k in first["env"] if k in os.environ and k not in ours}
    assert not from_grader, sorted(from_grader)  # (ipykernel adds CLICOLOR, PAGER and such)
    # the scratch copy of its folder, in a private HOME; nothing written there comes back
    assert first["cwd"] == f"{sb.HOME}/{module.folder}" and first["cwd_files"] == ["data.txt"]
    assert sorted(p.name for p in folder.iterdir()) == ["data.txt"]
    assert not any(first["writable"].values()), first["writable"]
    # the next kernel starts clean: nothing of the first one's /tmp, HOME or folder
    under_tmp = {Path(p).relative_to("/tmp").parts[0] for p in sb._python_dirs()
                 if Path(p).is_relative_to("/tmp")}  # the way down to the environment
    assert set(first["tmp"]) == set(second["tmp"]) == under_tmp
    assert set(second["home_files"]) == {module.folder, ".ipython"}  # IPython's own profile
    assert second["cwd_files"] == ["data.txt"]
    # a /dev of its own: read-only, the usual devices, a /dev/shm of its own (what the first
    # kernel left there is not there for the second)
    for facts in (first, second):
        assert set(facts["dev"]) == {"fd", "full", "null", "pts", "random", "shm", "stderr",
                                     "stdin", "stdout", "tty", "urandom", "zero"}
        assert facts["run_writable"] == {"/dev/probe": False, "/run/grader/probe": False}
    assert first["shm"] == second["shm"] == []
    # no new session for anything it starts (a CPU share of its own): refused
    assert first["setsid"] != 0
    # what it writes goes to pipes and sockets (its output, ipykernel's channels), never a
    # regular file of the grading machine (it opens none of its own in the probe)
    import stat
    assert set(first["fds"]) <= {stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, 0}, first["fds"]


def test_without_the_sandbox_the_kernel_sees_the_disk(course: Course, tmp_path: Path) -> None:
    """The same probe without the sandbox: what the test above rules out is really there
    to see, so those checks can fail."""
    module = next(m for m in course.modules() if m.folder == "03_layers")
    folder = tmp_path / "plain"
    folder.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        kernelserver.serve(course, module, sandboxed=False)
        marker = tmp_path / "marker.txt"
        marker.write_text("x")
        facts = run_probe(folder, listener.getsockname()[1], [str(REPO / "modules")], marker)
    finally:
        listener.close()
    assert facts["visible"][str(REPO / "modules")] and facts["loopback"] == "connected"
    assert facts["setsid"] == 0  # the seccomp filter is what refuses it above
    assert "layers" in facts["package"] and facts["pid"] != 1
    assert (folder / "written-in-cwd").is_file()


def test_no_sandbox_where_bwrap_cannot_run(course: Course, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    module = course.modules()[0]
    monkeypatch.setattr(sb, "bwrap_path", lambda: "/nonexistent/bwrap")
    with pytest.raises(sb.SandboxUnavailable, match="--no-sandbox"):
        sb.probe(course, module)
    assert sys.platform.startswith("linux")


def test_course_grade_refuses_to_grade_without_its_sandbox(
        course: Course, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from coursekit.cli import main

    monkeypatch.setattr(sb, "bwrap_path", lambda: "/nonexistent/bwrap")
    code = main(["--root", str(REPO), "grade", "--submissions",
                 str(REPO / "examples" / "submissions"), "-m", "02", "--out",
                 str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "sandbox" in err and "bubblewrap" in err and "--no-sandbox" in err
    assert "Traceback" not in err and not (tmp_path / "g").exists()


def _run_bpf(program: bytes, arch: int, nr: int) -> int:
    """What the classic BPF ``program`` returns for a system call (its own small interpreter
    of the four instructions seccomp_program uses: load a word, jeq, jge, return)."""
    import struct

    ops = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    data = {0: nr, 4: arch}
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = ops[pc]
        if code == 0x20:
            acc, pc = data[k], pc + 1
        elif code in (0x15, 0x35):
            hit = acc == k if code == 0x15 else acc >= k
            pc += 1 + (jt if hit else jf)
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"instruction {code:#x}")


@pytest.mark.parametrize("machine", sorted(sb.SECCOMP_ARCHES))
def test_the_seccomp_filter_refuses_memory_no_process_holds(machine: str) -> None:
    """memfd_create and shmget fail with EPERM (0x50001), other calls are allowed
    (0x7fff0000), and so is nothing of another ABI (x32's bit, i386's audit arch)."""
    program = sb.seccomp_program(machine)
    assert program is not None
    arch, calls = sb.SECCOMP_ARCHES[machine]
    eperm, allow = 0x00050001, 0x7FFF0000
    for nr in calls.values():
        assert _run_bpf(program, arch, nr) == eperm
    for nr in set(range(0, 460)) - set(calls.values()):
        assert _run_bpf(program, arch, nr) == allow, nr
    assert _run_bpf(program, 0x40000003, 3) == eperm  # AUDIT_ARCH_I386: read
    if machine == "x86_64":
        assert _run_bpf(program, arch, 0x40000000 | 319) == eperm  # x32 memfd_create
    assert sb.seccomp_program("sparc64") is None
