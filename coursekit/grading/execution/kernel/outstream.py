"""Runs inside a grading kernel: the output cap.

:class:`CappedOutStream` keeps at most ``COURSEKIT_OUTPUT_BYTES`` characters of
stdout/stderr per executed cell (fd-level output too: ipykernel routes it through ``write``);
the rest is dropped in the kernel, so a cell printing 100 MB never reaches the grader. The
grading worker caps every kind of output again as it arrives
(:class:`coursekit.grading.execution.limits.LimitedExecute`): this is only the first line.
"""

from __future__ import annotations

import os

from ipykernel.iostream import OutStream

NOTICE = "\n[output cut by the grader after {n} characters]\n"


class CappedOutStream(OutStream):
    """An ipykernel ``OutStream`` that keeps at most N characters per request."""

    def write(self, string: str) -> int | None:  # type: ignore[override]
        cap = int(os.environ.get("COURSEKIT_OUTPUT_BYTES", "0") or 0)
        if not cap or not isinstance(string, str):
            return super().write(string)
        key = self.parent_header.get("msg_id")
        if getattr(self, "_ck_key", None) != key:
            self._ck_key, self._ck_used, self._ck_cut = key, 0, False
        room = cap - self._ck_used
        if room > 0:
            part = string[:room]
            self._ck_used += len(part)
            super().write(part)
        if len(string) > max(room, 0) and not self._ck_cut:
            self._ck_cut = True
            super().write(NOTICE.format(n=cap))
        return len(string)
