"""coursekit: the instructor tool of the course (build, release, grade, check).

Run it as ``course <command>`` or ``python -m coursekit <command>``; see ``course --help``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
