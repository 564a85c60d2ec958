"""tinytorch: a small deep-learning framework on NumPy, built module by module in the course.

* ``tinytorch.core``: the reference code of the modules, which the notebooks import;
* ``tinytorch.mine``: your own modules, exported from your completed notebooks by
  ``python -m tinytorch.mine``;
* ``tinytorch.milestone``: what the milestone notebooks use to run on your modules;
* ``tinytorch.submit``: hands a notebook in to the course's grading service
  (``python -m tinytorch.submit NOTEBOOK``).
"""


def make_mine(module: str) -> None:
    """Export the code written in module ``module``'s notebook (``"03_layers"``) into your
    own package, as ``python -m tinytorch.mine`` does; the export cell at the end of every
    notebook calls it. Where ``tinytorch.mine`` is not installed (the grader's copy of the
    package) it does nothing."""
    try:
        from tinytorch import mine
    except ImportError:
        print("tinytorch.mine is not installed here: nothing exported")
        return
    mine.export_from_notebook_cell(module)


def submit_for_grading(module: str) -> None:
    """Submit module ``module``'s notebook (``"03_layers"``) for grading, as it stands, and
    show the score and every failed test; the Submit cell at the end of every notebook
    calls it. Where ``tinytorch.submit`` is not installed (the grader's copy of the
    package), or a tool rather than a person runs the notebook, it only says so."""
    try:
        from tinytorch import submit
    except ImportError:
        print("tinytorch.submit is not installed here: nothing submitted")
        return
    submit.notebook_cell(module)
