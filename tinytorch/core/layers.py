"""Generated from modules/03_layers/layers.py by `course build`; do not edit.

Change the module file and run `course build --module 03`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from tinytorch.core.tensor import Tensor


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
        super().__init__(data, requires_grad=True, dtype=dtype)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


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

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """Every parameter of the tree, each once, with its dotted name: attributes in
        assignment order, a sub-module's parameters where the sub-module was assigned."""
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

    def parameters(self) -> list[Parameter]:
        """The parameters of `named_parameters()`, without their names."""
        return [p for _, p in self.named_parameters()]

    def train(self, mode: bool = True) -> Module:
        """Set `training = mode` on this module and every sub-module; return self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be True or False, got {mode!r}")
        for _, module in self.named_modules():
            module.training = mode
        return self

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
        state: dict[str, Any] = {name: p.data.copy() for name, p in self.named_parameters()}
        for name, generator in self._named_generators():
            state[name] = generator.bit_generator.state
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Check `state` against this model (names, shapes, dtypes, generator states), then
        copy it in place. Raises one ValueError listing every problem (missing and
        unexpected keys by name; a wrong shape with both shapes; a wrong dtype with both
        dtypes), changing nothing."""
        if not isinstance(state, Mapping):
            raise TypeError(
                f"load_state_dict: state must be a dict from names to arrays, got {type(state).__name__}"
            )
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

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


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
        bound = 1.0 / math.sqrt(self.in_features)
        shape = (self.in_features, self.out_features)
        self.weight = Parameter(rng.uniform(-bound, bound, size=shape).astype(np.float32))
        if bias:
            self.bias = Parameter(rng.uniform(-bound, bound, size=(self.out_features,)).astype(np.float32))
        else:
            self.bias = None

    def forward(self, x: Tensor) -> Tensor:
        """`x @ weight + bias` for x of shape (..., in_features)."""
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}, {self.out_features}): input x must have shape "
                f"(..., {self.in_features}), got shape {x.shape}"
            )
        y = x @ self.weight
        if self.bias is not None:
            y = y + self.bias
        return y

    def __repr__(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None})"


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
        if not self.training or self.p == 0.0:
            return x
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        scale = 1.0 / (1.0 - self.p) if self.p < 1.0 else 0.0
        mask = np.multiply(keep, scale, dtype=dtype)
        return x * mask

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


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
        for layer in self.layers:
            x = layer(x)
        return x

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
