"""Where the course lives on GitHub, and the Colab set-up cell every module notebook starts with.

:func:`colab_setup_source` is the first code cell every module carries, so that a notebook
opened in Colab installs the ``tinytorch`` reference package it imports.
"""

from __future__ import annotations

import re

from coursekit.course import CourseError

#: GitHub ``owner/name`` of the course repository (used by the Binder and Colab links and by
#: the Colab set-up cell). Change it here, then run ``course badges --write``.
COURSE_REPOSITORY = "your-org/tinytorch"
#: The branch the links open.
COURSE_BRANCH = "main"
_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")


def check_slug(repository: str) -> str:
    if not _SLUG_RE.match(repository):
        raise CourseError(f"COURSE_REPOSITORY {repository!r}: expected a GitHub 'owner/name'")
    return repository


def colab_setup_source(repository: str = COURSE_REPOSITORY, branch: str = COURSE_BRANCH) -> str:
    """Source of the first code cell of every module: installs ``tinytorch`` in Colab only.

    Plain Python (no ``%pip`` magic, so a module still runs as a script); elsewhere
    (JupyterLab, Binder, nbgrader) ``google.colab`` is not imported and it does nothing.
    """
    url = f"git+https://github.com/{check_slug(repository)}@{branch}"
    return (
        "# In Google Colab, install the course's reference package (tinytorch) first.\n"
        "# Anywhere else (JupyterLab, Binder, grading) this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        "    subprocess.run(\n"
        f'        [sys.executable, "-m", "pip", "install", "-q", "tinytorch-course @ {url}"],\n'
        "        check=True,\n"
        "    )"
    )


def colab_setup_cell(repository: str = COURSE_REPOSITORY, branch: str = COURSE_BRANCH) -> str:
    """The Colab set-up cell as it is written in a module file (percent format).

    Marked ``active="ipynb"``: Jupytext keeps its lines commented in the ``.py`` (a module
    also runs as a plain script, where ``from __future__`` must come first) and makes
    them code in the notebooks generated from it. It goes before the imports cell.
    """
    lines = colab_setup_source(repository, branch).splitlines()
    body = "\n".join(f"# {line}" if line else "#" for line in lines)
    return f'# %% active="ipynb"\n{body}\n'
