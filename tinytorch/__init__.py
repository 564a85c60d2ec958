"""tinytorch: a small deep-learning framework on NumPy, built module by module in the course.

* ``tinytorch.core``: the reference code of the modules, which the notebooks import;
* ``tinytorch.mine``: your own modules, exported from your completed notebooks by
  ``python -m tinytorch.mine``;
* ``tinytorch.milestone``: what the milestone notebooks use to run on your modules.
"""


def make_mine(module: str) -> None:
    """Export the code written in module ``module``'s notebook (``"03_layers"``) into your
    own package, as ``python -m tinytorch.mine`` does; the last cell of every notebook calls
    it. Where ``tinytorch.mine`` is not installed (the grader's copy of the package) it does
    nothing."""
    try:
        from tinytorch import mine
    except ImportError:
        print("tinytorch.mine is not installed here: nothing exported")
        return
    mine.export_from_notebook_cell(module)
