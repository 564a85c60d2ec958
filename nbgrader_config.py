"""nbgrader's own tools on the course's gradebook, run from the course root.

nbgrader (``nbgrader list``, ``nbgrader export``, ``nbgrader db ...``, ``nbgrader
generate_feedback``) and the formgrader in JupyterLab read ``nbgrader_config.py`` in the
folder they start in. This one loads the course's configuration, ``grader_config.py``, and
points them at the grading root ``grading/`` that ``course grade`` fills (submitted,
autograded and feedback notebooks, the gradebook). When ``course grade`` has run there, the
``grading/nbgrader_config.py`` it wrote is loaded last: it names the gradebook that run used
(a PostgreSQL server given with ``--db-url``, say).

A grading root elsewhere (``course grade --out DIR``) has its own ``DIR/nbgrader_config.py``:
run nbgrader's tools in ``DIR`` instead.
"""

from pathlib import Path

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

_HERE = Path(__file__).resolve().parent
_GRADING = _HERE / "grading"

load_subconfig(str(_HERE / "grader_config.py"))  # noqa: F821
c.CourseDirectory.root = str(_GRADING)
c.CourseDirectory.db_url = "sqlite:///" + str(_GRADING / "gradebook.db")
# nbgrader's exchange (release/submit/collect between accounts on one server) is not how
# the course hands out or collects notebooks; `nbgrader list` still needs one.
c.Exchange.root = str(_GRADING / "exchange")
try:
    (_GRADING / "exchange").mkdir(parents=True, exist_ok=True)
except OSError:
    pass  # nbgrader names the folder it cannot use
if (_GRADING / "nbgrader_config.py").is_file():
    load_subconfig(str(_GRADING / "nbgrader_config.py"))  # noqa: F821
