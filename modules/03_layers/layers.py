# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 03: Layers
#
# A neural network is a chain of small functions with learnable numbers inside
# them. Training changes those numbers; everything else about the network stays
# fixed. So before we can train anything we need a way to say *which* numbers are
# learnable, to find all of them in a big model, and to save and restore them.
#
# In this module you build:
#
# 1. **`Parameter`**: a tensor the model learns, so it always asks for gradients;
# 2. **`Module`**: the base class of every layer and model. It finds all parameters
#    of a model (also inside sub-layers), gives each one a name, switches the whole
#    model between training and evaluation, and saves/restores its state;
# 3. **`Linear`**: the fully connected layer `y = x @ W + b`;
# 4. **`Dropout`**: randomly silences activations while training;
# 5. **`Sequential`**: runs layers one after the other.
#
# Every forward pass here is written with `Tensor` operations from module 01, so
# the graph is recorded and module 06 can differentiate a whole network without
# a single change to this file.
#
# **What you need**: module 01 (`Tensor`) and module 02 (activations such as `ReLU`).

# %% nbgrader={"grade": false, "grade_id": "layers_imports", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# The next cell gives two small checks used by the layers' constructors. Errors
# that name the argument, the value and what was expected save a lot of debugging
# later: compare "in_features must be a positive int, got 0" with a NumPy error
# from deep inside a matrix product.

# %% nbgrader={"grade": false, "grade_id": "layers_helpers", "locked": true, "schema_version": 3, "solution": false, "task": false}
#| export
def _check_positive_int(name: str, value: Any, owner: str) -> int:
    """Return `value` as an int, or raise naming the argument, its value and what was expected."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: {name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


def _check_rng(rng: Any, owner: str) -> np.random.Generator:
    """`rng` if it is a NumPy Generator, a fresh `default_rng()` if it is None; else TypeError."""
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{owner}: rng must be a np.random.Generator (e.g. np.random.default_rng(0)) or None, "
            f"got {type(rng).__name__}"
        )
    return rng

# %% [markdown]
# ## 1. Parameter: a tensor that learns
#
# A layer holds two kinds of arrays: the ones it learns (weights, biases) and
# everything else (a random generator, a cached shape, a flag). We mark the
# learnable ones by giving them their own type. `Parameter` *is* a `Tensor`
# (a subclass), with one difference: it always has `requires_grad=True`, because
# the whole point of a parameter is to receive a gradient.
#
# ```python
# w = Parameter(np.zeros((3, 2), dtype=np.float32))
# w.requires_grad        # True
# isinstance(w, Tensor)  # True: every Tensor operation works on it
# ```
#
# Results of operations on parameters are ordinary tensors (`w * 2` is a `Tensor`,
# not a `Parameter`): only the arrays you store in a layer are parameters.
#
# A parameter follows Tensor's dtype rule (module 01), and since it requires
# gradients, its data must be floating-point: an integer or bool array is refused
# with Tensor's `ValueError` ("requires_grad=True needs a floating dtype"), as
# `torch.nn.Parameter` refuses one. Pass `requires_grad=True` to Tensor's constructor
# and that check does it; `Parameter(np.arange(3), dtype=np.float32)` converts first.

# %% nbgrader={"grade": false, "grade_id": "layers_parameter", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Parameter(Tensor):
    """A Tensor that a model learns: it always requires gradients.

    `Module.parameters()` finds every attribute of this type.

    Args:
        data: the initial values (array, list, number or Tensor).
        dtype: NumPy dtype to store; default follows Tensor's rule (float32 for numbers,
            lists and float arrays). Integer or bool data is refused with a ValueError:
            a Parameter requires grad, which needs a floating dtype.
    """

    def __init__(self, data: Any, dtype: Any = None) -> None:
        ### BEGIN SOLUTION
        super().__init__(data, requires_grad=True, dtype=dtype)
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"

# %% nbgrader={"grade": true, "grade_id": "layers_test_parameter", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
p = Parameter(np.ones((2, 3), dtype=np.float32))
assert isinstance(p, Tensor), "Parameter should be a subclass of Tensor"
assert p.requires_grad is True, f"a Parameter must require gradients, got requires_grad={p.requires_grad}"
assert p.shape == (2, 3), f"Parameter keeps the shape of its data: expected (2, 3), got {p.shape}"
assert p.dtype == np.float32, f"expected float32, got {p.dtype}"
try:
    Parameter(np.array([1, 2, 3]))
except ValueError as error:
    assert "requires_grad" in str(error), f"Tensor's error for an integer array that requires grad, got: {error}"
else:
    raise AssertionError("Parameter(np.array([1, 2, 3])) must raise ValueError: a Parameter requires grad, "
                         "which needs a floating dtype. Hint: super().__init__(data, requires_grad=True, dtype=dtype)")
print("Parameter: OK")
### BEGIN HIDDEN TESTS
# A list of Python numbers follows Tensor's rule: float32 (module 01).
q = Parameter([1.0, 2.0, 3.0])
assert q.dtype == np.float32 and q.requires_grad is True, \
    f"a list becomes float32 (Tensor's rule) and a Parameter requires grad; got dtype {q.dtype}, requires_grad {q.requires_grad}"
# An explicit dtype is honoured (gradient checks use float64).
r = Parameter(np.zeros(4), dtype=np.float64)
assert r.dtype == np.float64, f"Parameter(..., dtype=np.float64) should store float64, got {r.dtype}"
# The values are kept: 1 + 2 + 3 = 6, summed by hand.
assert float(np.asarray(q.data, dtype=np.float64).sum()) == 6.0, f"Parameter must keep the values it was given: {q.data}"
# bool data cannot require grad either: refused like integers
try:
    Parameter(np.array([True, False]))
except ValueError:
    pass
else:
    raise AssertionError("Parameter of a bool array must raise ValueError (a Parameter requires grad)")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Module: the base class of every layer
#
# A model is a tree. A multilayer perceptron is a `Sequential` holding `Linear`
# layers and activations; a bigger model may hold several such blocks, or a list
# of them. `Module` gives every node of that tree the same abilities:
#
# | method | what it does |
# |---|---|
# | `forward(x)` | the computation; each layer writes its own |
# | `__call__(x)` | `layer(x)` just calls `forward(x)` |
# | `named_modules()` | every module of the tree with its dotted name (the root is `""`) |
# | `named_parameters()` | every parameter with its dotted name, e.g. `"fc1.weight"`, `"0.bias"` |
# | `parameters()` | the same parameters without names (what an optimizer takes) |
# | `train(mode)` / `eval()` | set `training` on every module of the tree |
# | `state_dict()` / `load_state_dict(state)` | save / restore every parameter (and random generator) by name |
#
# ### How parameters are found
#
# There is no registration call: a module looks at its own attributes
# (`vars(self)`, in the order they were assigned) and keeps the ones that are
# `Parameter`s or `Module`s. Lists and tuples are opened up, so
# `self.blocks = [Linear(...), Linear(...)]` contributes `blocks.0` and `blocks.1`.
# The helper `_children()` (given) does this one level deep; you write the walk
# over the whole tree.
#
# Two rules make the result predictable:
#
# * **order**: the order in which attributes were assigned, depth first. Optimizers
#   and checkpoints rely on the same order every time.
# * **uniqueness**: a parameter or a module reachable twice (weight tying, the same
#   layer used in two places) is listed once, under the first name it was found
#   with. Otherwise an optimizer would update it twice per step. Compare objects
#   with `is` / `id()`, never with `==` (on tensors `==` means "element-wise").
#
# Both walks are the same recursion, over `_children()` in order, starting at the
# root with the name prefix `""`:
#
# * `named_modules()`: list the module itself (under its prefix), then walk every
#   child that is a `Module`, with the prefix extended by the child's name
#   (`_join(prefix, name)`). A module already listed is skipped, with its subtree.
# * `named_parameters()`: for every child in order, a `Parameter` is listed right
#   there (`_join(prefix, name)`), a `Module` is walked right there. So a module's
#   parameters appear **where the module was assigned**, between the parameters
#   assigned before it and after it. Skip parameters and modules already seen.
#
# Watch the order in the test model below: its root holds `first`, then `blocks`,
# then `tied`, which is the same object as `first.scale`. Walking the root's
# children in order reaches `first.scale` (inside `first`) long before `tied`, so
# the parameter is listed once, as `"first.scale"`, and `tied` adds nothing. (Listing
# the root's own parameters first, and sub-modules after, would put it first, under
# the wrong name.)
#
# ### Training and evaluation
#
# Some layers behave differently while training (Dropout drops, at evaluation it
# does not). Every module has a `training` flag; `model.train()` and `model.eval()`
# must reach **every** module of the tree, including those hidden in lists.
#
# ### State dicts
#
# `state_dict()` returns a plain `dict` from names to NumPy arrays: **copies**, so
# training on afterwards does not change a saved state. A module that owns a random
# generator (an attribute that is a `np.random.Generator`, such as Dropout's `rng`)
# also saves the generator's state under `"<module name>.<attribute>"`, e.g.
# `"2.rng"`; the state is `generator.bit_generator.state`, a dict of plain numbers,
# so a resumed run draws the same dropout masks as an uninterrupted one.
#
# **Key order**: first every parameter, in the order of `named_parameters()`; then
# every generator, in the order of the given `_named_generators()` (modules as
# `named_modules()` lists them, each module's attributes in assignment order). A
# generator never sits between parameters, even when it was assigned before them:
# `Noisy` below assigns its `rng` first and still saves
# `["inner.scale", "inner.shift", "rng"]`.
#
# `load_state_dict(state)` is careful in two ways:
#
# 1. it **checks everything before changing anything**: missing names, unexpected
#    names, wrong shapes and wrong dtypes are collected and reported together in one
#    `ValueError`. A half-loaded model is worse than an error. The message names
#    every problem: each missing and each unexpected key by its name, a wrong shape
#    with the key and **both shapes** (the one given and the one expected), a wrong
#    dtype with the key and both dtypes. For example
#    `load_state_dict: the state does not fit this model: missing keys ['fc.bias'];
#    'fc.weight' has shape (3, 2), expected (2, 3)`.
# 2. it copies **into the existing arrays** (`np.copyto(param.data, value)`) instead
#    of replacing them. An optimizer that already holds references to the
#    parameters keeps working with the loaded values. Generator states are set
#    back the same way (`generator.bit_generator.state = saved`), on the very
#    generator objects the modules hold.
#
# A saved generator state is **wrong** when the generator refuses it: not a dict, the
# state of another kind of generator (an `MT19937` state for a `PCG64`), a dict with
# entries missing or of the wrong type. Find out without touching the module's own
# generator: set it on a scratch generator of the same kind,
# `type(generator.bit_generator)().state = value`, which raises `TypeError`,
# `ValueError` or `KeyError` for a wrong state. Such a state is one more problem in the
# one `ValueError`, named by its key (e.g. `'2.rng' is not a valid generator state`).

# %% nbgrader={"grade": false, "grade_id": "layers_module", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
def _join(prefix: str, name: str) -> str:
    """Dotted name: `_join("", "fc1") == "fc1"`, `_join("net", "0") == "net.0"`."""
    return f"{prefix}.{name}" if prefix else name


class Module:
    """Base class of layers and models.

    Subclasses call `super().__init__()`, assign their parameters and sub-modules as
    attributes, and write `forward`. Calling the module calls `forward`.
    """

    training: bool = True

    def __init__(self) -> None:
        self.training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation of the module; every subclass writes its own."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def _children(self) -> Iterator[tuple[str, Any]]:
        """Given: (name, value) for each attribute that is a Parameter or a Module, in
        assignment order; lists and tuples are opened up as "name.0", "name.1", ..."""
        for name, value in vars(self).items():
            if isinstance(value, (Parameter, Module)):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, (Parameter, Module)):
                        yield f"{name}.{i}", item

    def named_modules(self) -> list[tuple[str, Module]]:
        """Every module of the tree, each once, depth first: `[("", self), ("fc1", ...), ...]`."""
        ### BEGIN SOLUTION
        found: list[tuple[str, Module]] = []
        seen: set[int] = set()

        def visit(prefix: str, module: Module) -> None:
            if id(module) in seen:
                return
            seen.add(id(module))
            found.append((prefix, module))
            for name, child in module._children():
                if isinstance(child, Module):
                    visit(_join(prefix, name), child)

        visit("", self)
        return found
        ### END SOLUTION

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """Every parameter of the tree, each once, with its dotted name: attributes in
        assignment order, a sub-module's parameters where the sub-module was assigned."""
        ### BEGIN SOLUTION
        found: list[tuple[str, Parameter]] = []
        seen: set[int] = set()  # ids of the parameters and modules already visited

        def visit(prefix: str, module: Module) -> None:
            seen.add(id(module))
            for name, child in module._children():
                if id(child) in seen:
                    continue
                if isinstance(child, Parameter):
                    seen.add(id(child))
                    found.append((_join(prefix, name), child))
                else:
                    visit(_join(prefix, name), child)

        visit("", self)
        return found
        ### END SOLUTION

    def parameters(self) -> list[Parameter]:
        """The parameters of `named_parameters()`, without their names."""
        return [p for _, p in self.named_parameters()]

    def train(self, mode: bool = True) -> Module:
        """Set `training = mode` on this module and every sub-module; return self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be True or False, got {mode!r}")
        ### BEGIN SOLUTION
        for _, module in self.named_modules():
            module.training = mode
        return self
        ### END SOLUTION

    def eval(self) -> Module:
        """Switch the whole tree to evaluation mode (`train(False)`); return self."""
        return self.train(False)

    def _named_generators(self) -> list[tuple[str, np.random.Generator]]:
        """Given: ("<module name>.<attribute>", generator) for every np.random.Generator
        attribute of every module of the tree."""
        found = []
        for prefix, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, np.random.Generator):
                    found.append((_join(prefix, name), value))
        return found

    def state_dict(self) -> dict[str, Any]:
        """Copies of all parameter arrays by name (in `named_parameters()` order), then the
        state of every owned generator (in `_named_generators()` order)."""
        ### BEGIN SOLUTION
        state: dict[str, Any] = {name: p.data.copy() for name, p in self.named_parameters()}
        for name, generator in self._named_generators():
            state[name] = generator.bit_generator.state
        return state
        ### END SOLUTION

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Check `state` against this model (names, shapes, dtypes, generator states), then
        copy it in place. Raises one ValueError listing every problem (missing and
        unexpected keys by name; a wrong shape with both shapes; a wrong dtype with both
        dtypes), changing nothing."""
        if not isinstance(state, Mapping):
            raise TypeError(
                f"load_state_dict: state must be a dict from names to arrays, got {type(state).__name__}"
            )
        ### BEGIN SOLUTION
        params = dict(self.named_parameters())
        generators = dict(self._named_generators())
        problems: list[str] = []
        missing = [name for name in [*params, *generators] if name not in state]
        unexpected = [name for name in state if name not in params and name not in generators]
        if missing:
            problems.append(f"missing keys {missing}")
        if unexpected:
            problems.append(f"unexpected keys {unexpected}")
        arrays: dict[str, np.ndarray] = {}
        for name, param in params.items():
            if name not in state:
                continue
            value = state[name]
            try:
                array = value.data if isinstance(value, Tensor) else np.asarray(value)
            except ValueError:
                problems.append(f"{name!r} is not an array ({type(value).__name__})")
                continue
            if array.shape != param.data.shape:
                problems.append(f"{name!r} has shape {array.shape}, expected {param.data.shape}")
            elif array.dtype != param.data.dtype:
                problems.append(f"{name!r} has dtype {array.dtype}, expected {param.data.dtype}")
            else:
                arrays[name] = array
        for name, generator in generators.items():
            if name not in state:
                continue
            try:  # try the state on a scratch generator of the same kind first
                type(generator.bit_generator)().state = state[name]
            except (TypeError, ValueError, KeyError) as error:
                problems.append(f"{name!r} is not a valid generator state ({error})")
        if problems:
            raise ValueError("load_state_dict: the state does not fit this model: " + "; ".join(problems))
        for name, param in params.items():
            np.copyto(param.data, arrays[name])
        for name, generator in generators.items():
            generator.bit_generator.state = state[name]
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

# %% [markdown]
# The tests below use small models written only with `Parameter`s (the layers come
# in the next sections). Read them to see the trees: in `TwoStage`, `first` is a
# sub-module, `blocks` a list of sub-modules, and `tied` is the *same* parameter
# object as `first.scale`. `Noisy` owns a random generator, as Dropout will.

# %% nbgrader={"grade": false, "grade_id": "layers_toy_models", "locked": true, "schema_version": 3, "solution": false, "task": false}
class Affine(Module):
    """y = x * scale + shift, element-wise: the smallest useful module."""

    def __init__(self, n: int, start: float = 1.0) -> None:
        super().__init__()
        self.scale = Parameter(np.full(n, start, dtype=np.float32))
        self.shift = Parameter(np.zeros(n, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


class TwoStage(Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = Affine(3, start=1.0)
        self.blocks = [Affine(3, start=2.0), Affine(2, start=3.0)]
        self.tied = self.first.scale  # the same object again: must be listed once

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks[0](self.first(x))


class Noisy(Module):
    """A module that owns a random generator (as Dropout will), assigned before its parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.rng = np.random.default_rng(0)
        self.inner = Affine(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x) + Tensor(self.rng.standard_normal(x.shape).astype(np.float32))

# %% nbgrader={"grade": true, "grade_id": "layers_test_named_modules", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
net = TwoStage()
module_names = [name for name, _ in net.named_modules()]
assert module_names == ["", "first", "blocks.0", "blocks.1"], (
    f"named_modules() should list the root as '' and then every sub-module depth first, got {module_names}"
)
assert net.named_modules()[2][1] is net.blocks[0], "named_modules() returns the module objects themselves"
print("named_modules: OK")
### BEGIN HIDDEN TESTS
# A module used in two places appears once, under its first name.
shared = Affine(2)


class Reuse(Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = shared
        self.pair = (Affine(2), shared)
        self.inner = TwoStage()


got = [name for name, _ in Reuse().named_modules()]
assert got == ["", "a", "pair.0", "inner", "inner.first", "inner.blocks.0", "inner.blocks.1"], (
    f"named_modules(): depth first in assignment order, a module reachable twice listed once "
    f"under its first name, tuples opened up; got {got}"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "layers_test_named_parameters", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
net = TwoStage()
names = [name for name, _ in net.named_parameters()]
expected = ["first.scale", "first.shift", "blocks.0.scale", "blocks.0.shift", "blocks.1.scale", "blocks.1.shift"]
assert names == expected, (
    f"named_parameters() should give {expected}, got {names}. "
    "Hint: walk the root's _children() in order; list a Parameter there, walk a Module there "
    "(recursively, prefix extended); skip what was already seen (by id)."
)
assert len(net.parameters()) == 6, f"'tied' is first.scale again and must not be counted twice: got {len(net.parameters())} parameters"
assert net.parameters()[0] is net.first.scale, "parameters() must return the parameter objects themselves, not copies"
print("named_parameters: OK")
### BEGIN HIDDEN TESTS
# Parameters of the root between sub-modules keep their place; a shared module counts once.
shared = Affine(2)


class Mixed(Module):
    def __init__(self) -> None:
        super().__init__()
        self.gain = Parameter(np.ones(2, dtype=np.float32))
        self.a = shared
        self.pair = (Affine(2), shared)
        self.offset = Parameter(np.zeros(2, dtype=np.float32))
        self.again = self.a.scale


got = [name for name, _ in Mixed().named_parameters()]
assert got == ["gain", "a.scale", "a.shift", "pair.0.scale", "pair.0.shift", "offset"], (
    "named_parameters(): attributes in assignment order, a sub-module's parameters where it was "
    f"assigned, each parameter once under its first name; got {got}"
)
# Identity, not equality: two different parameters with equal values are both kept.
twins = Mixed()
twins.pair = (Affine(2), Affine(2))
ids = [id(p) for p in twins.parameters()]
assert len(ids) == 8 and len(set(ids)) == 8, \
    f"equal-valued but distinct parameters must all be listed (compare with id, not ==), got {len(set(ids))} of 8"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "layers_test_train_eval", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
net = TwoStage()
assert net.training is True, "a new module starts in training mode"
returned = net.eval()
assert returned is net, "eval() should return the module itself, so `model = Model().eval()` works"
flags = [m.training for _, m in net.named_modules()]
assert flags == [False, False, False, False], f"eval() must reach every module, also the ones in lists; got {flags}"
net.train()
flags = [m.training for _, m in net.named_modules()]
assert flags == [True, True, True, True], f"train() must reach every module; got {flags}"
print("train and eval: OK")
### BEGIN HIDDEN TESTS
assert net.train(False) is net, "train(False) should return the module itself"
assert [net.training, net.first.training, net.blocks[0].training, net.blocks[1].training] == [False] * 4, \
    "train(False) must reach every module of the tree, also the ones in lists"
assert net.train(True) is net and net.blocks[1].training is True, "train(True) switches the whole tree back"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "layers_test_state_dict", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
net = TwoStage()
state = net.state_dict()
assert list(state) == [name for name, _ in net.named_parameters()], f"state_dict keys should follow named_parameters(), got {list(state)}"
small = Affine(3)
saved = small.state_dict()
assert list(saved) == ["scale", "shift"] and isinstance(saved["scale"], np.ndarray), \
    f"state_dict values are NumPy arrays under the parameters' names, got {saved}"
saved["scale"][0] = 99.0
assert float(small.scale.data[0]) == 1.0, "state_dict() must return copies: changing the saved array changed the model"

noisy_state = Noisy().state_dict()
assert noisy_state["rng"] == np.random.default_rng(0).bit_generator.state, \
    f"a generator attribute is saved as generator.bit_generator.state under its name, got keys {list(noisy_state)}"
assert list(noisy_state) == ["inner.scale", "inner.shift", "rng"], \
    f"the parameters first, then the generators (even one assigned before them), got {list(noisy_state)}"
print("state_dict: OK")
### BEGIN HIDDEN TESTS
holder = Module()
holder.noisy = Noisy()
holder.noisy.rng.random(3)  # move the generator on: its current state is saved
got = holder.state_dict()
assert list(got) == ["noisy.inner.scale", "noisy.inner.shift", "noisy.rng"], \
    f"keys: the parameters' names, then '<module name>.<attribute>' for each generator; got {list(got)}"
reference = np.random.default_rng(0)
reference.random(3)
assert got["noisy.rng"] == reference.bit_generator.state, "the generator's state now, bit_generator.state"
got["noisy.inner.shift"][0] = 5.0
assert float(holder.noisy.inner.shift.data[0]) == 0.0, "state_dict() must return copies of the arrays"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "layers_test_load_state_dict", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
net = TwoStage()
other = TwoStage()
for p in other.parameters():
    p.data[...] = 7.0
before = other.first.scale.data
other.load_state_dict(net.state_dict())
assert other.first.scale.data is before, "load_state_dict must copy into the existing arrays (np.copyto), not replace them"
assert float(other.blocks[1].scale.data[0]) == 3.0, "load_state_dict should copy the values (blocks.1.scale starts at 3.0)"
print("load_state_dict: OK")
### BEGIN HIDDEN TESTS
saved = Noisy()
saved.inner.scale.data[...] = 2.5
saved.rng.random(4)
target = Noisy()
arrays = [p.data for p in target.parameters()]
generator = target.rng
target.load_state_dict(saved.state_dict())
assert all(p.data is a for p, a in zip(target.parameters(), arrays, strict=True)), "copy into the existing arrays (np.copyto)"
assert float(target.inner.scale.data[0]) == 2.5, "the saved values are loaded"
assert target.rng is generator and target.rng.random() == saved.rng.random(), \
    "the saved generator state is set on the module's own generator: it draws what the saved one draws"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "layers_test_load_state_dict_errors", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
bad = TwoStage().state_dict()
del bad["first.shift"]
bad["blocks.1.scale"] = np.zeros(4, dtype=np.float32)
target = TwoStage()
try:
    target.load_state_dict(bad)
except ValueError as error:
    for word in ("first.shift", "blocks.1.scale", "(4,)", "(2,)"):
        assert word in str(error), f"the error should name {word!r} (every key, both shapes); got: {error}"
else:
    raise AssertionError("a state with a missing key and a wrong shape must raise ValueError")
assert float(target.first.scale.data[0]) == 1.0, "a failed load_state_dict must not change any parameter"
print("load_state_dict refuses a state that does not fit: OK")
### BEGIN HIDDEN TESTS
# Every problem in one error, and nothing changed.
bad = TwoStage().state_dict()
del bad["blocks.0.shift"]
bad["extra.weight"] = np.zeros(3, dtype=np.float32)
bad["blocks.1.shift"] = np.zeros((2, 1), dtype=np.float32)
target = TwoStage()
for p in target.parameters():
    p.data[...] = 5.0
try:
    target.load_state_dict(bad)
except ValueError as error:
    for word in ("blocks.0.shift", "extra.weight", "blocks.1.shift", "(2, 1)", "(2,)"):
        assert word in str(error), f"the error should name every problem: each key, and both shapes; missing {word!r} in: {error}"
else:
    raise AssertionError("a state with a missing key, an unexpected key and a wrong shape must raise ValueError")
values = [float(v) for p in target.parameters() for v in np.asarray(p.data, dtype=np.float64)]
assert values == [5.0] * 16, "a failed load_state_dict must not change any parameter"
wrong = TwoStage().state_dict()
wrong["blocks.0.scale"] = wrong["blocks.0.scale"].astype(np.float64)
try:
    target.load_state_dict(wrong)
except ValueError as error:
    assert "float64" in str(error) and "blocks.0.scale" in str(error), f"a wrong dtype: name the key and the dtype; got: {error}"
else:
    raise AssertionError("a float64 array for a float32 parameter must be refused with ValueError")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Linear: the fully connected layer
#
# A linear layer maps every input vector of length `in_features` to an output
# vector of length `out_features`:
#
# $$y = x W + b, \qquad x: (N, \text{in}),\; W: (\text{in}, \text{out}),\; b: (\text{out},),\; y: (N, \text{out}).$$
#
# The bias is broadcast over the batch: the same `b` is added to every row.
#
# **Worked example.** With `x = [[1, 2]]`, `W = [[1, 0, -1], [2, 1, 0]]`, `b = [0.5, 0, -0.5]`:
# `x W = [1·1 + 2·2, 1·0 + 2·1, 1·(-1) + 2·0] = [5, 2, -1]`, and `y = [5.5, 2, -1.5]`.
#
# **Layout, compared with PyTorch.** We store `W` with shape `(in_features, out_features)`
# so that the forward pass reads exactly like the formula, `x @ W`. PyTorch's
# `nn.Linear` stores its weight transposed, `(out_features, in_features)`, and computes
# `x @ W.T`. The numbers are the same; to copy weights from a PyTorch model into
# ours, transpose them.
#
# **Initialisation.** If every weight were zero, every output unit would compute
# the same thing and receive the same gradient, forever. So weights start random,
# uniform in $[-k, k]$ with $k = 1/\sqrt{\text{in\_features}}$ (PyTorch's default
# for `nn.Linear` as well). Why that scale? An output is a sum of `in_features`
# products; a uniform draw on $[-k, k]$ has variance $k^2/3$, so for inputs of
# variance 1 the output variance is $\text{in} \cdot k^2 / 3 = 1/3$ however wide the
# layer is. Without the $1/\sqrt{\text{in}}$ the outputs grow with the width.
#
# Randomness comes from an explicit generator, `rng` (a `np.random.Generator`),
# never from NumPy's global state: the same `rng` seed gives the same network.
# The recipe, so results are reproducible everywhere:
#
# ```python
# k = 1 / math.sqrt(in_features)
# weight = rng.uniform(-k, k, size=(in_features, out_features))   # drawn first
# bias   = rng.uniform(-k, k, size=(out_features,))               # then the bias
# ```
#
# both stored as float32 `Parameter`s. With `bias=False`, `self.bias` is `None` and
# nothing is drawn for it (as in PyTorch): the weight is the same as with a bias, and
# `rng` moves on by the weight's draws only.
#
# **Speed.** `forward` is two Tensor operations, `x @ self.weight` and `+ self.bias`:
# no copies, no loops, float32 throughout. NumPy hands the product to an optimised
# BLAS routine, which is where nearly all the time of an MLP goes.

# %% nbgrader={"grade": false, "grade_id": "layers_linear", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Linear(Module):
    """Fully connected layer: `y = x @ weight + bias`.

    Args:
        in_features: length of each input vector (the last dimension of x).
        out_features: length of each output vector.
        bias: learn an additive bias (default True); with False, `self.bias` is None and
            no bias is drawn from `rng`.
        rng: np.random.Generator for the initial weights; None means a fresh default_rng().

    `weight` has shape (in_features, out_features) (PyTorch stores the transpose),
    `bias` shape (out_features,); both start uniform in ±1/sqrt(in_features), float32.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _check_positive_int("in_features", in_features, "Linear")
        self.out_features = _check_positive_int("out_features", out_features, "Linear")
        if not isinstance(bias, bool):
            raise TypeError(f"Linear: bias must be True or False, got {bias!r}")
        rng = _check_rng(rng, "Linear")
        self.weight: Parameter
        self.bias: Parameter | None
        ### BEGIN SOLUTION
        bound = 1.0 / math.sqrt(self.in_features)
        shape = (self.in_features, self.out_features)
        self.weight = Parameter(rng.uniform(-bound, bound, size=shape).astype(np.float32))
        if bias:
            self.bias = Parameter(rng.uniform(-bound, bound, size=(self.out_features,)).astype(np.float32))
        else:
            self.bias = None
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """`x @ weight + bias` for x of shape (..., in_features)."""
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}, {self.out_features}): input x must have shape "
                f"(..., {self.in_features}), got shape {x.shape}"
            )
        ### BEGIN SOLUTION
        y = x @ self.weight
        if self.bias is not None:
            y = y + self.bias
        return y
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None})"

# %% [markdown]
# Try it: a layer from 4 to 3 features applied to a batch of two vectors.

# %%
layer = Linear(4, 3, rng=np.random.default_rng(0))
x = Tensor(np.arange(8, dtype=np.float32).reshape(2, 4))
y = layer(x)
print(layer)
print("weight", layer.weight.shape, "bias", layer.bias.shape, "->", "y", y.shape, y.dtype)
print([name for name, _ in layer.named_parameters()])

# %% nbgrader={"grade": true, "grade_id": "layers_test_linear_forward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
layer = Linear(2, 3, rng=np.random.default_rng(0))
layer.weight.data[...] = [[1, 0, -1], [2, 1, 0]]
layer.bias.data[...] = [0.5, 0, -0.5]
y = layer(Tensor([[1.0, 2.0]]))
assert isinstance(y, Tensor), f"Linear should return a Tensor, got {type(y).__name__}"
# Worked example above, by hand: [1*1+2*2, 1*0+2*1, 1*(-1)+2*0] + b = [5.5, 2, -1.5]
assert np.asarray(y.data, dtype=np.float64).tolist() == [[5.5, 2.0, -1.5]], f"expected [[5.5, 2.0, -1.5]], got {y.data.tolist()}"
assert y.dtype == np.float32, f"float32 in, float32 out; got {y.dtype}"
assert y._op == "add" and y._inputs[1:] == (layer.bias,), "forward is x @ weight + bias, with Tensor operations (recorded)"
print("Linear forward: OK")
### BEGIN HIDDEN TESTS
# Compare with NumPy on the side, in float64.
rng = np.random.default_rng(11)
big = Linear(5, 4, rng=rng)
xs = rng.standard_normal((6, 5)).astype(np.float32)
out = big(Tensor(xs))
reference = xs.astype(np.float64) @ big.weight.data.astype(np.float64) + big.bias.data.astype(np.float64)
assert out.shape == (6, 4), f"a batch (6, 5) through Linear(5, 4) gives (6, 4), got {out.shape}"
assert np.allclose(np.asarray(out.data, dtype=np.float64), reference, atol=1e-5), "Linear output differs from x @ W + b"
# Leading batch dimensions are kept: (2, 3, 5) -> (2, 3, 4).
out3 = big(Tensor(rng.standard_normal((2, 3, 5)).astype(np.float32)))
assert out3.shape == (2, 3, 4), f"an input of shape (2, 3, 5) should give (2, 3, 4), got {out3.shape}"
# The forward pass is recorded: the output's graph reaches weight and bias.
reached, stack = set(), [big(Tensor(xs))]
while stack:
    t = stack.pop()
    if id(t) not in reached:
        reached.add(id(t))
        stack.extend(t._inputs)
assert id(big.weight) in reached and id(big.bias) in reached, (
    "the output's graph should reach weight and bias: build forward from Tensor operations (@ and +)"
)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "layers_test_linear_no_bias", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
plain = Linear(2, 3, bias=False, rng=np.random.default_rng(0))
assert plain.bias is None, "with bias=False, self.bias should be None"
plain.weight.data[...] = [[1, 0, -1], [2, 1, 0]]
got = np.asarray(plain(Tensor([[1.0, 2.0]])).data, dtype=np.float64).tolist()
assert got == [[5.0, 2.0, -1.0]], f"bias=False: y = x @ W = [[5, 2, -1]] (the worked example without b), got {got}"
g = np.random.default_rng(4)
Linear(2, 3, bias=False, rng=g)
reference = np.random.default_rng(4)
reference.uniform(-1 / np.sqrt(2), 1 / np.sqrt(2), size=(2, 3))  # the weight's draws only, NumPy on the side
assert g.random() == reference.random(), "bias=False draws nothing for the bias: rng moves on by the weight only"
print("Linear without bias: OK")
### BEGIN HIDDEN TESTS
nobias = Linear(5, 4, bias=False, rng=np.random.default_rng(2))
assert [n for n, _ in nobias.named_parameters()] == ["weight"], "without bias the only parameter is 'weight'"
xs = np.random.default_rng(3).standard_normal((6, 5)).astype(np.float32)
ref = xs.astype(np.float64) @ nobias.weight.data.astype(np.float64)
assert np.allclose(np.asarray(nobias(Tensor(xs)).data, dtype=np.float64), ref, atol=1e-5), "bias=False: y = x @ W"
# the weight is the one drawn with a bias; the generator has moved by the weight's 20 draws only
g, reference = np.random.default_rng(8), np.random.default_rng(8)
same_weight = Linear(5, 4, bias=False, rng=g).weight.data
w_expected = reference.uniform(-1 / np.sqrt(5), 1 / np.sqrt(5), size=(5, 4)).astype(np.float32)
assert np.array_equal(same_weight, w_expected) and g.random() == reference.random(), \
    "bias=False: the weight is drawn as usual, and nothing is drawn for the bias"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "layers_test_linear_init", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
layer = Linear(400, 300, rng=np.random.default_rng(1))
w = np.asarray(layer.weight.data, dtype=np.float64)
k = 1 / np.sqrt(400)  # = 0.05
assert layer.weight.shape == (400, 300), f"weight shape should be (in, out) = (400, 300), got {layer.weight.shape}"
assert layer.bias.shape == (300,), f"bias shape should be (out,) = (300,), got {layer.bias.shape}"
assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32, "parameters should be float32"
assert isinstance(layer.weight, Parameter) and isinstance(layer.bias, Parameter), "weight and bias must be Parameters"
assert np.abs(w).max() <= k + 1e-7, f"weights must lie in ±1/sqrt(in_features) = ±{k}, max |w| = {np.abs(w).max():.4f}"
# 120,000 uniform draws on [-k, k]: the variance is k^2/3 within a few percent.
assert abs(w.var() / (k**2 / 3) - 1) < 0.05, f"weights should be uniform on [-k, k] (variance k^2/3 = {k**2 / 3:.2e}), got {w.var():.2e}"
same = Linear(400, 300, rng=np.random.default_rng(1))
assert np.array_equal(same.weight.data, layer.weight.data), "the same seed must give the same weights"
print("Linear init: OK")
### BEGIN HIDDEN TESTS
# The documented recipe, recomputed with NumPy on the side: weight first, then bias.
check = np.random.default_rng(7)
bound = 1 / np.sqrt(4)
w_expected = check.uniform(-bound, bound, size=(4, 3)).astype(np.float32)
b_expected = check.uniform(-bound, bound, size=(3,)).astype(np.float32)
small = Linear(4, 3, rng=np.random.default_rng(7))
assert np.array_equal(small.weight.data, w_expected), "weight should be rng.uniform(-k, k, size=(in, out)), drawn first"
assert np.array_equal(small.bias.data, b_expected), "bias should be rng.uniform(-k, k, size=(out,)), drawn after the weight"
# rng=None works and gives a fresh generator: two layers differ.
a, b = Linear(10, 10), Linear(10, 10)
assert not np.array_equal(a.weight.data, b.weight.data), "rng=None should draw from a fresh generator each time"
### END HIDDEN TESTS

# %% [markdown]
# ### Why 1/sqrt(in_features)? A picture
#
# Left: the weights of one `Linear(784, 256)` fill the interval $\pm 1/\sqrt{784}$
# evenly. Right: the spread (standard deviation) of the outputs for random inputs
# of variance 1, as the layer gets wider. With the $1/\sqrt{\text{in}}$ bound it
# stays at $\sqrt{1/3} \approx 0.58$; with a fixed bound of 0.1 it keeps growing.

# %%
import matplotlib.pyplot as plt

rng = np.random.default_rng(0)
wide = Linear(784, 256, rng=rng)
widths = [16, 64, 256, 1024, 4096]
std_scaled, std_fixed = [], []
for width in widths:
    xs = rng.standard_normal((256, width)).astype(np.float32)
    std_scaled.append(float(Linear(width, 64, bias=False, rng=rng)(Tensor(xs)).data.std()))
    fixed = rng.uniform(-0.1, 0.1, size=(width, 64)).astype(np.float32)
    std_fixed.append(float((xs @ fixed).std()))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
ax1.hist(wide.weight.data.ravel(), bins=50, color="tab:blue")
for edge in (-1 / np.sqrt(784), 1 / np.sqrt(784)):
    ax1.axvline(edge, color="black", linestyle="--")
ax1.set_title("Linear(784, 256).weight: uniform in ±1/sqrt(784)")
ax1.set_xlabel("weight value")
ax2.plot(widths, std_scaled, "o-", label="bound 1/sqrt(in)")
ax2.plot(widths, std_fixed, "s-", label="bound 0.1 (fixed)")
ax2.axhline(np.sqrt(1 / 3), color="gray", linestyle=":", label="sqrt(1/3)")
ax2.set_xscale("log")
ax2.set_xlabel("in_features")
ax2.set_ylabel("std of outputs")
ax2.set_title("Output spread vs. layer width")
ax2.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Dropout: training with parts of the network switched off
#
# Dropout is a simple defence against over-fitting: while training, each activation
# is set to zero with probability `p`, a new random choice at every call. The
# network cannot rely on any single unit and learns redundant features.
#
# At evaluation we want the full network and deterministic outputs, so dropout
# does nothing. But then the next layer would see larger sums than during training
# (no units are missing). **Inverted dropout** fixes this during training instead:
# the kept activations are divided by the keep probability `1 - p`, so the
# expected value of every activation is the same in both modes:
#
# $$\mathbb{E}[\text{out}] = (1-p) \cdot \frac{x}{1-p} + p \cdot 0 = x.$$
#
# **Worked example.** `p = 0.5`, `x = [2, 4, 6, 8]`, mask drawn as `[keep, drop, keep, drop]`:
# the output is `[2/0.5, 0, 6/0.5, 0] = [4, 0, 12, 0]`. In eval mode the output is `[2, 4, 6, 8]`.
#
# Details that matter:
#
# * `p` must be in `[0, 1]`. `p = 0` is the identity. `p = 1` drops everything: the
#   output is all zeros, as with PyTorch's `nn.Dropout(p=1.0)`. There is nothing left
#   to rescale then, so the scale is 0 instead of `1/(1-p)` (which would divide by
#   zero); the mask is still drawn and still multiplied in, so the result is
#   recorded like any other and its gradient is zero.
# * The mask comes from the layer's own generator `self.rng`, drawn as
#   `self.rng.random(x.shape, dtype=np.float32) >= p` (True means "keep"). Because `rng`
#   is an attribute, `state_dict()` saves its state, and a resumed run repeats the masks.
# * The kept values are scaled by **multiplying with a scaled mask**: `mask` holds 0
#   for a dropped element and `1/(1-p)` for a kept one, in `x`'s dtype (so the scale
#   is rounded once, to that dtype), and the output is `x * mask`. That is exactly what
#   PyTorch computes, bit for bit. (Dividing the kept values by `1 - p` gives the same
#   numbers up to the last bit, not always the same bits; the tests allow for that
#   rounding.)
# * Multiply **as a Tensor operation** (`x * mask`, with `mask` a NumPy array or a
#   Tensor). Then the multiplication is recorded in the graph and the gradient flows
#   back through exactly the kept units.
# * In eval mode (or `p = 0`) return `x` itself: no copy, nothing recorded.

# %% nbgrader={"grade": false, "grade_id": "layers_dropout", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Dropout(Module):
    """Inverted dropout: in training, `x * mask` with `mask` 0 (probability p) or 1/(1-p)
    in x's dtype; in evaluation mode, the identity. p = 1 gives zeros.

    Args:
        p: probability of dropping an element, in [0, 1].
        rng: np.random.Generator for the masks; None means a fresh default_rng().
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise TypeError(f"Dropout: p must be a number in [0, 1], got {p!r} ({type(p).__name__})")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got p={p!r}")
        self.p = float(p)
        self.rng = _check_rng(rng, "Dropout")

    def forward(self, x: Tensor) -> Tensor:
        """Dropped and rescaled x in training mode, x itself in evaluation mode."""
        if not isinstance(x, Tensor):
            x = Tensor(x)
        ### BEGIN SOLUTION
        if not self.training or self.p == 0.0:
            return x
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        scale = 1.0 / (1.0 - self.p) if self.p < 1.0 else 0.0
        mask = np.multiply(keep, scale, dtype=dtype)
        return x * mask
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

# %% nbgrader={"grade": true, "grade_id": "layers_test_dropout", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
drop = Dropout(0.5, rng=np.random.default_rng(0))
ones = Tensor(np.ones((100, 100), dtype=np.float32))
out = np.asarray(drop(ones).data, dtype=np.float64)
assert set(np.unique(out).tolist()) <= {0.0, 2.0}, f"with p=0.5 every element is 0 or 1/(1-0.5) = 2, got values {np.unique(out)[:5]}"
dropped = float((out == 0).mean())
assert 0.45 < dropped < 0.55, f"about half of 10,000 elements should be dropped with p=0.5, got {dropped:.3f}"
# The mask recipe, recomputed with NumPy on the side: keep = random >= p, mask 0 or 1/(1-p), x * mask.
x = np.array([[2.0, 4.0, 6.0, 8.0]], dtype=np.float32)
keep = np.random.default_rng(1).random((1, 4), dtype=np.float32) >= 0.5
mask = np.where(keep, np.float32(1 / (1 - 0.5)), np.float32(0.0))
got = Dropout(0.5, rng=np.random.default_rng(1))(Tensor(x))
assert np.allclose(got.data, x * mask, rtol=1e-6, atol=0), \
    f"keep = rng.random(x.shape, dtype=np.float32) >= p, output x * mask with mask 0 or 1/(1-p): expected {x * mask}, got {got.data}"
assert got.dtype == np.float32, f"float32 in, float32 out; got {got.dtype}"
print("Dropout in training: OK")
### BEGIN HIDDEN TESTS
# The documented mask recipe, recomputed with NumPy on the side, with another p and seed.
x = np.arange(1, 21, dtype=np.float32).reshape(4, 5)
keep = np.random.default_rng(3).random((4, 5), dtype=np.float32) >= 0.25
expected = x * np.where(keep, np.float32(1 / 0.75), np.float32(0.0))
got = Dropout(0.25, rng=np.random.default_rng(3))(Tensor(x))
assert np.allclose(np.asarray(got.data, dtype=np.float64), expected, rtol=1e-6, atol=0), \
    "keep = rng.random(x.shape, dtype=np.float32) >= p, output x * mask with mask 0 or 1/(1-p)"
x64 = Tensor(np.ones((3, 3)), dtype=np.float64)
assert Dropout(0.5, rng=np.random.default_rng(0))(x64).dtype == np.float64, "a float64 input should give a float64 output"
# The multiplication is recorded: the output's inputs include x.
xg = Tensor(x, requires_grad=True)
yg = Dropout(0.5, rng=np.random.default_rng(1))(xg)
assert yg._op is not None and any(t is xg for t in yg._inputs), "the mask must be applied with a Tensor operation (x * mask) so it is recorded"
# A new mask at each call.
d2 = Dropout(0.5, rng=np.random.default_rng(4))
assert not np.array_equal(d2(ones).data, d2(ones).data), "each call should draw a new mask"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "layers_test_dropout_identity", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
x = Tensor(np.ones((3, 4), dtype=np.float32), requires_grad=True)
drop = Dropout(0.5, rng=np.random.default_rng(0))
drop.eval()
assert drop(x) is x, "in eval mode Dropout must return its input itself"
assert Dropout(0.0)(x) is x, "Dropout(0.0) is the identity: it returns its input itself"
print("Dropout in evaluation: OK")
### BEGIN HIDDEN TESTS
x2 = Tensor([[1.5, -2.0]])
assert Dropout(0.9).eval()(x2) is x2, "in eval mode Dropout returns x itself, whatever p"
back = Dropout(0.3, rng=np.random.default_rng(0)).eval().train()
assert back(Tensor(np.ones(1000, dtype=np.float32))).data.min() == 0.0, "back in training mode it drops again"
assert Dropout(0.0, rng=np.random.default_rng(0))(x2) is x2, "Dropout(0.0) returns x itself"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "layers_test_dropout_all", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
import warnings

x = Tensor(np.array([[1.0, -2.0, 3.0]], dtype=np.float32), requires_grad=True)
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        out = Dropout(1.0, rng=np.random.default_rng(0))(x)
    except (ZeroDivisionError, RuntimeWarning) as error:
        raise AssertionError(f"p = 1 must not divide by zero ({error!r}). Hint: use a scale of 0 when p == 1") from None
assert np.array_equal(out.data, np.zeros((1, 3))), f"p = 1 drops everything: zeros, got {out.data}"
assert any(t is x for t in out._inputs), "the result is still x * mask, recorded"
print("Dropout(1.0): OK")
### BEGIN HIDDEN TESTS
x64 = Tensor(np.full((2, 2), 4.0), dtype=np.float64)
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        zero = Dropout(1.0, rng=np.random.default_rng(5))(x64)
    except (ZeroDivisionError, RuntimeWarning) as error:
        raise AssertionError(f"p = 1 must not divide by zero ({error!r})") from None
assert zero.dtype == np.float64 and np.array_equal(np.asarray(zero.data), np.zeros((2, 2))), \
    f"p = 1 gives zeros of x's shape and dtype, got {zero.data} ({zero.dtype})"
### END HIDDEN TESTS

# %% [markdown]
# ### What dropout does to a batch
#
# Left: `Dropout(0.5)` applied to a block of ones in training mode; about half the
# entries become 0 and the others 2. Right: the mean of the output over 100,000
# elements for several `p`: thanks to the `1/(1-p)` scaling it stays at 1, the value
# the next layer sees at evaluation.

# %%
rng = np.random.default_rng(0)
block = Dropout(0.5, rng=rng)(Tensor(np.ones((16, 48), dtype=np.float32))).data
ps = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9]
means = [float(Dropout(p, rng=rng)(Tensor(np.ones(100_000, dtype=np.float32))).data.mean()) for p in ps]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
image = ax1.imshow(block, cmap="viridis", vmin=0, vmax=2)
ax1.set_title("Dropout(0.5) on ones: 0 or 2")
fig.colorbar(image, ax=ax1, shrink=0.7)
ax2.plot(ps, means, "o-", label="mean of output (training)")
ax2.axhline(1.0, color="gray", linestyle=":", label="eval output = input = 1")
ax2.set_ylim(0.8, 1.2)
ax2.set_xlabel("p")
ax2.legend()
ax2.set_title("Inverted scaling keeps the mean")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Sequential: a network as a list of layers
#
# Most small networks are a straight pipe: layer, activation, layer, activation, ...
# `Sequential(*layers)` keeps the layers in a list and its `forward` passes the
# input through each in turn. Besides modules it accepts any **parameter-free
# callable**, such as the activations of module 02 (`ReLU()`), which are plain
# objects, not modules.
#
# Names come from positions, like in PyTorch: in
# `Sequential(Linear(4, 8), ReLU(), Linear(8, 2))` the parameters are
# `0.weight, 0.bias, 2.weight, 2.bias` (position 1, the ReLU, has none). That is why
# `Sequential` overrides `_children()` (given): its children are named `"0"`, `"1"`, ...
# rather than `"layers.0"`.
#
# `model[i]` returns layer `i`, `model[1:]` a new `Sequential` sharing those layers,
# and `len(model)` the number of layers.

# %% nbgrader={"grade": false, "grade_id": "layers_sequential", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Sequential(Module):
    """Apply layers in order: `Sequential(a, b, c)(x) == c(b(a(x)))`.

    Args:
        *layers: Modules or parameter-free callables (e.g. activations).
    """

    def __init__(self, *layers: Module | Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(
                    f"Sequential: layer {i} must be a Module or a callable, got {type(layer).__name__}"
                )
        self.layers: list[Any] = list(layers)

    def _children(self) -> Iterator[tuple[str, Any]]:
        """Given: the module layers, named by their position "0", "1", ..."""
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Module):
                yield str(i), layer

    def forward(self, x: Tensor) -> Tensor:
        """Pass x through every layer in order."""
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return x
        ### END SOLUTION

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

# %% [markdown]
# A first multilayer perceptron, built from the pieces of this module and the
# activations of module 02:

# %%
from tinytorch.core.activations import ReLU

mlp = Sequential(
    Linear(784, 128, rng=np.random.default_rng(0)),
    ReLU(),
    Dropout(0.2, rng=np.random.default_rng(1)),
    Linear(128, 10, rng=np.random.default_rng(2)),
)
print(mlp)
print([name for name, _ in mlp.named_parameters()])
batch = Tensor(np.random.default_rng(3).standard_normal((32, 784)).astype(np.float32))
print("logits", mlp(batch).shape)
print("state_dict keys", list(mlp.state_dict()))

# %% nbgrader={"grade": true, "grade_id": "layers_test_sequential", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from tinytorch.core.activations import ReLU

rng = np.random.default_rng(5)
first, second = Linear(4, 8, rng=rng), Linear(8, 2, rng=rng)
model = Sequential(first, ReLU(), second)
x = Tensor(rng.standard_normal((3, 4)).astype(np.float32))
by_hand = second(ReLU()(first(x)))
assert np.allclose(model(x).data, by_hand.data), "Sequential should apply its layers in order"
assert len(model) == 3 and model[0] is first and model[2] is second, "len() and indexing give the layers"
print("Sequential: OK")
### BEGIN HIDDEN TESTS
# Forward against NumPy on the side: relu(x W1 + b1) W2 + b2 in float64.
xs = x.data.astype(np.float64)
h = np.maximum(xs @ first.weight.data.astype(np.float64) + first.bias.data, 0.0)
ref = h @ second.weight.data.astype(np.float64) + second.bias.data
assert np.allclose(np.asarray(model(x).data, dtype=np.float64), ref, atol=1e-5), "Sequential output differs from the composition"
# The order matters: the layers run first to last.
double = Affine(2, start=2.0)
shift = Affine(2)
shift.shift.data[...] = 1.0
got = np.asarray(Sequential(double, shift)(Tensor([1.0, 3.0])).data, dtype=np.float64)
assert np.array_equal(got, [3.0, 7.0]), f"Sequential(a, b)(x) is b(a(x)), layers first to last; got {got}"
assert Sequential()(x) is x, "an empty Sequential returns its input itself"
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Systems: what an MLP costs
#
# How big is a network, and how long does a forward pass take? Take the classic
# MLP for 28x28 images: 784 → 256 → 128 → 10.
#
# **Parameters, by hand.** A `Linear(in, out)` has `in·out + out` numbers:
#
# | layer | weight | bias | total |
# |---|---|---|---|
# | 784 → 256 | 200,704 | 256 | 200,960 |
# | 256 → 128 | 32,768 | 128 | 32,896 |
# | 128 → 10 | 1,280 | 10 | 1,290 |
# | **sum** | | | **235,146** |
#
# At 4 bytes per float32 that is 940,584 bytes, under 1 MB. Training needs more:
# each parameter gets a gradient of the same size, and Adam (module 07) keeps two
# more buffers per parameter, so weights + gradients + Adam state are 4x the
# weights. The activations saved for the backward pass grow with the batch size.
#
# Let us measure instead of trusting the table.

# %%
import time

rng = np.random.default_rng(0)
mlp = Sequential(Linear(784, 256, rng=rng), ReLU(), Linear(256, 128, rng=rng), ReLU(), Linear(128, 10, rng=rng))
n_params = sum(p.size for p in mlp.parameters())
n_bytes = sum(p.data.nbytes for p in mlp.parameters())
print(f"parameters: {n_params:,}   bytes: {n_bytes:,} ({n_bytes / 2**20:.2f} MiB)")
for name, p in mlp.named_parameters():
    print(f"  {name:10s} {str(p.shape):12s} {p.data.nbytes:>9,} bytes")
print(f"weights + grads + Adam buffers: {4 * n_bytes / 2**20:.2f} MiB")

batch_size = 64
batch = Tensor(rng.standard_normal((batch_size, 784)).astype(np.float32))
mlp.eval()
mlp(batch)  # warm-up
repeats = 200
start = time.perf_counter()
for _ in range(repeats):
    out = mlp(batch)
elapsed = (time.perf_counter() - start) / repeats
flops = 2 * batch_size * (784 * 256 + 256 * 128 + 128 * 10)  # multiply-adds of the three products
activation_bytes = batch_size * (256 + 256 + 128 + 128 + 10) * 4  # outputs of the 5 layers, float32
print(f"forward of a batch of {batch_size}: {elapsed * 1e6:.0f} µs, {flops / elapsed / 1e9:.1f} GFLOP/s")
print(f"activations of one forward pass: {activation_bytes:,} bytes; output dtype {out.dtype}")

# %% [markdown]
# Things to notice:
#
# * Almost all parameters (85%) sit in the first layer: the input width dominates.
# * The matrix products are nearly all of the arithmetic; the bias additions and
#   ReLUs are memory traffic. Keeping everything float32 halves both the memory and
#   the time compared with float64.
# * For a small batch, Python overhead (creating tensors, recording the graph)
#   is a visible part of the time; larger batches amortise it.
#
# ## Summary
#
# * `Parameter` marks what a model learns; `Module` finds parameters by looking at
#   attributes, names them by position in the tree, and keeps them unique.
# * `train()`/`eval()` reach the whole tree; `state_dict()` copies,
#   `load_state_dict()` checks everything first and then copies in place.
# * `Linear` computes `x @ W + b` with `W` of shape `(in, out)` (PyTorch stores the
#   transpose) and starts uniform in `±1/sqrt(in)`.
# * `Dropout` uses its own generator and inverted scaling, recorded as a Tensor
#   multiplication so gradients flow through it.
# * `Sequential` chains modules and activations.
#
# Next: module 04 measures how wrong a network's outputs are (losses).
