"""What a grading kernel writes on its own standard output and error, read by the worker.

Every kernel's standard output and error are one pipe of its own (the fork server hands the
read end to the grading worker; a kernel started the usual way gets a pipe from
``subprocess``): nothing a kernel writes there lands in a file of the host, where a later
kernel could read it. :class:`KernelOutput` reads the pipe in a thread for as long as the
kernel lives: lines the seal writes (:mod:`coursekit.grading.execution.kernel.seal`) are kept
for :class:`coursekit.grading.execution.limits.LimitedExecute` to check and count; anything
else is the kernel's own noise (the notebook's output goes to the grader as messages, not
here), of which the last few kilobytes are kept to explain a kernel that died. The notebook's
code can write into the pipe too: it can add lines (which carry no valid signature) or fill
it (the reader drops what it cannot keep), never read it back.
"""

from __future__ import annotations

import fcntl
import os
import select
import termios
import threading
from collections import deque

SEAL_PREFIX = b"\x1eCKV1 "
MAX_LINE = 64 * 1024
MAX_SEAL_LINES = 5000
TAIL_BYTES = 16 * 1024


class KernelOutput:
    """The reader of one kernel's output pipe (the descriptor ``fd``, closed at the end)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[bytes] = []  # seal lines, in arrival order
        self.dropped = 0  # seal-looking lines beyond MAX_SEAL_LINES or MAX_LINE
        self.noise = 0  # bytes of other output
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._cond = threading.Condition()
        self._pending = b""  # the start of a line whose end has not come yet
        self.closed = False
        self._thread = threading.Thread(target=self._read, daemon=True,
                                        name=f"kernel-output-{fd}")
        self._thread.start()

    def _keep_noise(self, data: bytes) -> None:
        self.noise += len(data)
        self._tail.append(data[-TAIL_BYTES:])
        self._tail_size += len(self._tail[-1])
        while self._tail_size > TAIL_BYTES and len(self._tail) > 1:
            self._tail_size -= len(self._tail.popleft())

    def _line(self, line: bytes) -> None:
        if line.startswith(SEAL_PREFIX):
            with self._cond:
                if len(self.lines) < MAX_SEAL_LINES and len(line) <= MAX_LINE:
                    self.lines.append(line)
                else:
                    self.dropped += 1
                self._cond.notify_all()
        else:
            self._keep_noise(line)

    def _read(self) -> None:
        """Read the pipe until it ends; bytes are read and sorted while holding the lock, so
        a waiter that holds it sees either none or all of them."""
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        try:
            while True:
                try:
                    if not poller.poll(500):
                        continue
                except InterruptedError:
                    continue
                with self._cond:
                    try:
                        chunk = os.read(self.fd, 65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    self._pending += chunk
                    *complete, self._pending = self._pending.split(b"\n")
                    for line in complete:
                        self._line(line)
                    if len(self._pending) > MAX_LINE:  # no end of line: noise
                        self._keep_noise(self._pending)
                        self._pending = b""
                    self._cond.notify_all()
        finally:
            with self._cond:
                if self._pending:
                    self._line(self._pending)
                    self._pending = b""
                try:
                    os.close(self.fd)
                except OSError:
                    pass
                self.closed = True
                self._cond.notify_all()

    def _unread(self) -> int:
        """Bytes waiting in the pipe, not yet read."""
        try:
            return int.from_bytes(fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0"),
                                  "little")
        except OSError:
            return 0

    def wait_for(self, token: bytes, timeout: float) -> list[bytes]:
        """The seal lines that contain ``token``, once everything the kernel has written so
        far is read and sorted (or ``timeout`` seconds have passed, or its output ended). Call
        it after the kernel's answer to a cell: the seal writes its line before the kernel
        answers."""
        def settled() -> bool:
            return (self.closed or any(token in x for x in self.lines)
                    or (not self._pending and self._unread() == 0))

        with self._cond:
            self._cond.wait_for(settled, timeout=timeout)
            return [x for x in self.lines if token in x]

    def tail(self) -> str:
        """The last few kilobytes of the kernel's other output, as text."""
        return b"".join(self._tail).decode("utf-8", errors="replace")

    def join(self, timeout: float = 2.0) -> None:
        """Wait for the reader to finish (the kernel's pipe closed)."""
        self._thread.join(timeout)


def remove_tree(path: os.PathLike[str] | str) -> bool:
    """Remove the folder ``path`` and everything in it, however deep, without following a
    link; True if it is gone.

    It walks down and back up one folder at a time with a single open descriptor (a tree
    thousands of folders deep needs neither recursion nor thousands of descriptors, and no
    path grows past the system's limit); a folder the notebook made unreadable is opened up
    first (it belongs to the same user).
    """
    path = os.fspath(path)
    if not os.path.lexists(path):
        return True
    if os.path.islink(path) or not os.path.isdir(path):
        try:
            os.unlink(path)
        except OSError:
            return False
        return True
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError:
        return False
    names: list[str] = []  # the way down from ``path`` to ``fd``
    ok = True
    try:
        while True:
            try:
                os.fchmod(fd, 0o700)
            except OSError:
                pass
            child = None
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            child = entry.name
                            break
                        try:
                            os.unlink(entry.name, dir_fd=fd)
                        except FileNotFoundError:
                            pass
            except OSError:
                ok = False
            if child is not None:
                try:
                    down = os.open(child, flags, dir_fd=fd)
                except OSError:
                    ok = False
                    child = None
                else:
                    os.close(fd)
                    fd = down
                    names.append(child)
                    continue
            if not names:
                break
            up = os.open("..", flags, dir_fd=fd)
            os.close(fd)
            fd = up
            try:
                os.rmdir(names.pop(), dir_fd=fd)
            except OSError:
                return False  # cannot go on without looping over the same folder
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        ok = False
    return ok and not os.path.lexists(path)
