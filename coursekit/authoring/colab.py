"""The Colab set-up cell every module notebook starts with.

A notebook opened in Colab has no ``tinytorch``; the cell installs the package from the
published student repository (``[student_repository]`` in ``course.toml``, read by
:mod:`coursekit.authoring.student_repository`). ``course build`` writes it, locked, before
the first code cell of every notebook, so changing the repository in ``course.toml`` means
running ``course build && course release`` again (``course publish`` checks it).
"""

from __future__ import annotations

from pathlib import Path

from coursekit.authoring.student_repository import check_branch, check_slug, read
from coursekit.course import Course

#: The distribution name of the package in the student repository (its pyproject.toml).
PACKAGE_DISTRIBUTION = "tinytorch-course"


def install_url(slug: str, branch: str) -> str:
    """The pip URL of the student repository's package at ``branch``."""
    return f"git+https://github.com/{check_slug(slug)}@{check_branch(branch)}"


def colab_setup_source(slug: str, branch: str) -> str:
    """Source of the first code cell of every module: installs ``tinytorch`` in Colab only.

    Plain Python (no ``%pip`` magic, so a module still runs as a script); elsewhere
    (JupyterLab, Binder, nbgrader) ``google.colab`` is not imported and it does nothing.
    """
    url = install_url(slug, branch)
    return (
        "# In Google Colab, install the course's reference package (tinytorch) first.\n"
        "# Anywhere else (JupyterLab, Binder, grading) this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        "    subprocess.run(\n"
        f'        [sys.executable, "-m", "pip", "install", "-q", '
        f'"{PACKAGE_DISTRIBUTION} @ {url}"],\n'
        "        check=True,\n"
        "    )"
    )


def course_colab_source(course: Course | Path) -> str:
    """The Colab set-up cell of ``course`` (a Course or its root), from its ``course.toml``."""
    repo = read(course if isinstance(course, Course) else Course(course))
    return colab_setup_source(repo.slug, repo.branch)
