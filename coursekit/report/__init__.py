"""The class report: what a term's grades say, on one page (``course report``).

It reads the gradebook (nbgrader's tables, with plain SQL, read-only) and the grading root
(``grades.csv``, the autograded notebooks' failure messages), never the submissions' code, and
writes ``report.html`` (figures embedded, no network needed to open it) with the numbers
behind every figure as CSV files beside it. It imports nothing of the grading machinery
(nbconvert, the sandbox, ``coursekit.grading.dispatch`` or ``coursekit.grading.execution``):
only the base modules and :mod:`coursekit.grading.records.database`.
"""

from coursekit.report.build import write_report

__all__ = ["write_report"]
