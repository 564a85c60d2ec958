"""Namespaces of one grading kernel, taken inside the grading sandbox (Linux only).

The sandbox (:mod:`coursekit.grading.execution.sandbox`, bubblewrap) holds one fork server per
worker and module; every kernel forked from it must also be sealed off from the kernels graded
before and after it. :func:`enter` runs in the forked process before it becomes a kernel and
gives it namespaces of its own, with the same system calls bubblewrap uses (``unshare``,
``mount``):

* a user namespace mapping only the sandbox's user (the kernel holds capabilities there just
  long enough to set up its mounts, then :func:`drop_privileges` drops them all);
* a mount namespace with a fresh ``/tmp`` and ``HOME`` (memory-backed, size-limited; what
  the sandbox mounted below them, such as a Python environment in /tmp, is mounted again)
  and a scratch copy of its submission's folder, copied from the stage folder, which is
  then covered so the kernel cannot see it; a ``/dev`` of its own, read-only, with the
  usual devices (null, zero, full, random, urandom, tty) and a private, size-limited
  ``/dev/shm``, so nothing one kernel leaves there reaches the next one and memory held
  there is bounded;
* PID, IPC, UTS and network namespaces: the kernel is process 1 of its own PID namespace
  (everything it starts dies with it), its System V IPC objects vanish with it, and it has
  no network interface up at all (not even the sandbox's loopback).

Mounts of the sandbox (read-only system, reference package) are locked in the new namespace:
the kernel can neither remount them writable nor uncover what they hide.

The kernel keeps its capabilities (in its own namespaces only) while ipykernel sets itself
up; before the first cell, :func:`lock_down` makes the run folder it shares with the grading
worker read-only (its sockets are bound by then: nothing can be planted there, no socket
replaced by a link) and drops every capability for good.
"""

from __future__ import annotations

import ctypes
import os
import shutil

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_SET_DUMPABLE = 4
CAP_LAST_CAP_FALLBACK = 40
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(_libc.mount(source.encode(), target.encode(),
                       fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                       data.encode() if data else None), f"mount {target}")


def _mounts_under(folder: str) -> list[str]:
    """Mount points below ``folder`` in this mount namespace, outermost only."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            point = line.split()[4]
            for code in ("\\040", "\\011", "\\012", "\\134"):  # mountinfo escapes
                point = point.replace(code, chr(int(code[1:], 8)))
            if point.startswith(folder.rstrip("/") + "/"):
                found.append(point)
    found.sort()
    return [p for i, p in enumerate(found)
            if not any(p.startswith(q + "/") for q in found[:i])]


def _cover(folder: str, options: str) -> None:
    """A new tmpfs on ``folder``; what the sandbox mounted below it (the Python
    environment, when it lives in /tmp) is mounted there again, as it was."""
    keep = [(p, os.open(p, os.O_PATH), os.path.isdir(p)) for p in _mounts_under(folder)]
    try:
        _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, options)
        for point, fd, is_dir in keep:
            if is_dir:
                os.makedirs(point, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(point), exist_ok=True)
                open(point, "a").close()
            _mount(f"/proc/self/fd/{fd}", point, None, MS_BIND | MS_REC, None)
    finally:
        for _, fd, _ in keep:
            os.close(fd)


#: Files (inodes) each private tmpfs may hold: tmpfs counts its size in data pages only, and
#: every file, empty or not, costs the host's kernel memory of its own (about 1 KiB).
TMP_INODES = 20_000
HOME_INODES = 50_000
SHM_INODES = 1_000


def enter(home: str, scratch: str, stage: str, tmp_mb: int, home_mb: int,
          shm_mb: int = 64) -> None:
    """Take the kernel's own namespaces and set up its private folders.

    ``home`` and ``/tmp`` become new tmpfs mounts; the folder ``stage`` is copied to
    ``scratch`` (inside ``home``) and then covered by an empty read-only tmpfs. The calling
    process stays in the sandbox's PID namespace: its *next child* is process 1 of the new
    one (see :func:`coursekit.grading.execution.kernel.forkserver`).
    """
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC
                         | CLONE_NEWUTS | CLONE_NEWNET), "unshare")
    with open("/proc/self/setgroups", "w", encoding="ascii") as fh:
        fh.write("deny")
    with open("/proc/self/uid_map", "w", encoding="ascii") as fh:
        fh.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w", encoding="ascii") as fh:
        fh.write(f"{gid} {gid} 1")
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    _cover("/tmp", f"size={tmp_mb}m,nr_inodes={TMP_INODES},mode=1777")
    _cover(home, f"size={home_mb}m,nr_inodes={HOME_INODES},mode=0755")
    shutil.copytree(stage, scratch, symlinks=True)
    _mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY,
           "size=4k,nr_inodes=8,mode=0555")
    _private_dev(shm_mb)
    _libc.sethostname(b"grader", 6)
    # no user namespace inside this one: in a nested one the kernel could mount a tmpfs of
    # its own, outside every limit above (the setting holds for this namespace only)
    with open("/proc/sys/user/max_user_namespaces", "w", encoding="ascii") as fh:
        fh.write("0")


DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def _private_dev(shm_mb: int) -> None:
    """A ``/dev`` of this kernel's own: the usual devices (bound from the sandbox's),
    a private ``/dev/shm`` of ``shm_mb`` MiB, then read-only."""
    keep = {}
    for name in DEVICES:
        try:
            keep[name] = os.open(f"/dev/{name}", os.O_PATH)
        except OSError:
            continue
    try:
        _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
               "size=64k,nr_inodes=64,mode=0755")
        for name, fd in keep.items():
            open(f"/dev/{name}", "w").close()
            _mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, MS_BIND, None)
    finally:
        for fd in keep.values():
            os.close(fd)
    os.mkdir("/dev/shm")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           f"size={shm_mb}m,nr_inodes={SHM_INODES},mode=1777")
    os.mkdir("/dev/pts")
    os.symlink("/proc/self/fd", "/dev/fd")
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{number}", f"/dev/{name}")
    _mount("none", "/dev", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, None)


def lock_down(run: str) -> None:
    """Before the first cell: the run folder ``run`` read-only, no ``/proc`` (through
    ``/proc/self/mem`` a process reads its own memory, the seal's key included), every
    privilege dropped, no new session (:func:`no_new_sessions`)."""
    _mount("none", run, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    _mount("tmpfs", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
           "size=4k,nr_inodes=8,mode=0555")
    drop_privileges()
    no_new_sessions()


#: (audit architecture, setsid, setpgid) of the system call tables the filter knows.
_ARCHES = {"x86_64": (0xC000003E, 112, 109), "aarch64": (0xC00000B7, 157, 154)}
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_RET_ERRNO = 0x00050000
_EPERM = 1


def no_new_sessions() -> bool:
    """Refuse ``setsid`` and ``setpgid`` (EPERM) to this process and everything it starts, by
    a seccomp filter. Linux shares the CPU fairly between sessions (autogroups): a notebook
    whose processes each started a session of their own would take a share per process from
    the other submissions graded at the same time. False where the filter is not known."""
    arch = _ARCHES.get(os.uname().machine)
    if arch is None:
        return False
    audit_arch, setsid, setpgid = arch

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(Filter))]

    ld, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET
    code = [
        (ld, 0, 0, 4),                      # the architecture
        (jeq, 0, 3, audit_arch),            # another one: on to ALLOW
        (ld, 0, 0, 0),                      # the system call's number
        (jeq, 2, 0, setsid),
        (jeq, 1, 0, setpgid),
        (ret, 0, 0, _SECCOMP_RET_ALLOW),
        (ret, 0, 0, _SECCOMP_RET_ERRNO | _EPERM),
    ]
    program = (Filter * len(code))(*[Filter(*op) for op in code])
    prog = Program(len(code), program)
    return _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) == 0


def drop_privileges() -> None:
    """Give up every capability for good, and forbid gaining any (setuid, file caps)."""
    last = CAP_LAST_CAP_FALLBACK
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
            last = int(fh.read())
    except (OSError, ValueError):
        pass
    for cap in range(last + 1):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails only for caps that do not exist

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header = Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (Data * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def set_dumpable(on: bool) -> None:
    """Mark this process dumpable or not. The fork server is not: processes of the same user
    (its kernels) can then neither read its memory nor attach to it. A kernel forked from it
    turns it back on for itself, so that its own ``/proc/self`` files stay its own."""
    _libc.prctl(PR_SET_DUMPABLE, 1 if on else 0, 0, 0, 0)


