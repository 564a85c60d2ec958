"""Text for people: numbers, durations, and anything a submission produced made safe to show.

Scores and times are printed in one style everywhere (console, ``grades.csv``, exports).
Text that comes from a submission (a test's failure message, a reason, the command line of a
process it left running) can hold escape codes and control characters; :func:`clean` turns
them into visible escapes before such text reaches a console, a log, a CSV file or a page.
"""

from __future__ import annotations

import re

#: C0 and C1 control characters (tab and newline handled by the caller), DEL, and the
#: characters that reorder or hide text (bidirectional overrides, zero-width joiners).
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e"
                         "\u2066-\u2069\ufeff]")


def number(x: float) -> str:
    """A score as people write it: ``3``, ``2.50``."""
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def duration(seconds: float) -> str:
    """A run time: ``42s``, ``3m07s``."""
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def clean(text: str, *, newlines: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), so that it can
    neither move a terminal's cursor nor recolour or hide what follows. Newlines and tabs
    are kept when ``newlines`` is true, else they become escapes too."""
    def escape(match: re.Match[str]) -> str:
        ch = match.group(0)
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"

    text = str(text)
    if not newlines:
        text = text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return _CONTROL_RE.sub(escape, text)
