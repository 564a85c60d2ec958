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
  then covered so the kernel cannot see it;
* PID, IPC, UTS and network namespaces: the kernel is process 1 of its own PID namespace
  (everything it starts dies with it), its System V IPC objects vanish with it, and it has
  no network interface up at all (not even the sandbox's loopback).

Mounts of the sandbox (read-only system, reference package) are locked in the new namespace:
the kernel can neither remount them writable nor uncover what they hide.
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


def enter(home: str, scratch: str, stage: str, tmp_mb: int, home_mb: int) -> None:
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
    _cover("/tmp", f"size={tmp_mb}m,mode=1777")
    _cover(home, f"size={home_mb}m,mode=0755")
    shutil.copytree(stage, scratch, symlinks=True)
    _mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=0555")
    _libc.sethostname(b"grader", 6)


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


