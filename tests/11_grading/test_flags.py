"""The review flags: what they catch, and honest code they must leave alone."""

import pytest

from coursekit.grading.execution.flags import PATCH_RE, reference_import_re


@pytest.mark.parametrize("line", [
    "np.allclose = lambda *a, **k: True",
    "import numpy; numpy.testing.assert_allclose = print",
    "    np.testing.assert_array_equal = lambda *a: None",
    "builtins.isinstance = lambda *a: True",
    "setattr(np, 'allclose', f)",
])
def test_replacing_library_functions_is_flagged(line):
    assert PATCH_RE.search(line), line


@pytest.mark.parametrize("line", [
    "self.data: np.ndarray = array",          # an annotated attribute (module 01's Tensor)
    "x = np.allclose(a, b)",
    "if np.linalg.norm(g) == 0:",
    "# np.allclose = f  (a comment)",
])
def test_honest_code_is_not_flagged_as_patching(line):
    assert not PATCH_RE.search(line), line


@pytest.mark.parametrize("line", [
    "from tinytorch.core.training import Trainer",
    "import tinytorch.core.training as t",
    "from tinytorch.core import training",
    "importlib.import_module('tinytorch.core.training')",
    "exec(open('tinytorch/core/training.py').read())",
])
def test_reference_imports_are_flagged(line):
    assert reference_import_re("training").search(line), line


@pytest.mark.parametrize("line", [
    'was_training = bool(getattr(self.model, "training", True))',   # module 08's Trainer
    "from tinytorch.core.optimizers import SGD",
    "self.training = True",
])
def test_honest_code_is_not_flagged_as_a_reference_import(line):
    assert not reference_import_re("training").search(line), line
