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
# # Milestone 2: XOR and the limits of one layer (1969)
#
# Rosenblatt's perceptron came with a guarantee: *if* a line separates the classes, the
# learning rule finds one. In 1969 Marvin Minsky and Seymour Papert published
# *Perceptrons*, a careful mathematical study of what a single layer of such units can
# and cannot compute. The smallest example of what it cannot is **exclusive or**:
#
# | $x_1$ | $x_2$ | XOR |
# |---|---|---|
# | 0 | 0 | 0 |
# | 0 | 1 | 1 |
# | 1 | 0 | 1 |
# | 1 | 1 | 0 |
#
# The book's results were about single-layer machines; a network with a hidden layer
# computes XOR easily, and Minsky and Papert knew it. What nobody had then was a
# practical way to *train* the hidden layer. The book is often blamed for the years in
# which neural-network research lost most of its funding; the way out, training every
# layer with backpropagation, is milestone 3.
#
# **What this milestone proves.**
#
# 1. No line separates XOR, so any single-layer classifier (a `Linear` followed by a
#    threshold or a sigmoid) gets **at most 3 of the 4 points** right: 75%. We prove it,
#    check it by enumerating lines, and watch training stall below it.
# 2. One hidden layer, trained with your autograd, optimizer and `Trainer`, gets all 4
#    right: 100%.
#
# **Whose code runs.** In your student repository this notebook runs on *your* modules:
# those you exported from your completed notebooks (`python -m tinytorch.mine`, or the last
# cell of each notebook), and the course's reference code for the others. The next cell
# prints which is which. Set `REFERENCE_ONLY = True` in it to run on the reference code
# alone, for comparison. If your code raises, or training does not do what the milestone
# claims, the milestone runs the experiment again with one of your modules at a time and
# names the module at fault, with your numbers beside the reference's.
#
# ```bash
# python milestones/02_xor_1969/xor.py [--epochs N] [--quiet] [--out DIR]
#     [--reference-only]
# ```

# %%
REFERENCE_ONLY = False  # True: run on the course's reference code alone, for comparison

import argparse
import itertools
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tinytorch.milestone import Claim, Trial, use_framework

#: The modules this milestone runs on (autograd: `backward()`; training: the `Trainer`).
NEEDS = ("01_tensor", "02_activations", "03_layers", "04_losses", "05_dataloader",
         "06_autograd", "07_optimizers", "08_training")
IN_NOTEBOOK = "ipykernel" in sys.modules  # True inside Jupyter, False as a script
if not IN_NOTEBOOK:
    plt.switch_backend("Agg")  # no screen needed: plots go to PNG files
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()


def parse_settings(argv: list[str] | None) -> argparse.Namespace:
    """Command-line settings; in a notebook the defaults (edit them here to experiment)."""
    parser = argparse.ArgumentParser(description="Milestone 2: XOR and one layer's limit (1969)")
    parser.add_argument("--epochs", type=int, default=600, help="training epochs of each model")
    parser.add_argument("--hidden", type=int, default=4, help="units in the hidden layer")
    parser.add_argument("--seed", type=int, default=1969, help="seed of the initial weights")
    parser.add_argument("--quiet", action="store_true", help="print only the RESULT line")
    parser.add_argument("--out", type=Path, default=HERE / "output", help="folder for the plot")
    parser.add_argument("--reference-only", action="store_true",
                        help="run on the course's reference code alone (REFERENCE_ONLY)")
    return parser.parse_args(argv)


SETTINGS = parse_settings([] if IN_NOTEBOOK else None)


def say(message: str) -> None:
    """Print a progress message unless --quiet."""
    if not SETTINGS.quiet:
        print(message, flush=True)


def show(fig: plt.Figure, name: str) -> None:
    """Show a figure in the notebook, or save it as `<out>/<name>.png` in a script."""
    if IN_NOTEBOOK:
        plt.show()
        return
    SETTINGS.out.mkdir(parents=True, exist_ok=True)
    path = SETTINGS.out / f"{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    say(f"saved {path}")


framework = use_framework("Milestone 2", NEEDS, quiet=SETTINGS.quiet,
                          reference_only=REFERENCE_ONLY or SETTINGS.reference_only)
# imported after use_framework: the code it chose (used below to look at the models)
from tinytorch.core.activations import Sigmoid
from tinytorch.core.tensor import Tensor, no_grad

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)  # x1 XOR x2, one column

# %% [markdown]
# ## 1. Why no line can do it
#
# A single-layer classifier answers 1 where $w_1 x_1 + w_2 x_2 + b > 0$ and 0 elsewhere:
# one side of a line. Suppose some line got all four points right. Then
#
# * $(0, 1) \mapsto 1$ and $(1, 0) \mapsto 1$: $\;w_2 + b > 0$ and $w_1 + b > 0$;
# * $(0, 0) \mapsto 0$ and $(1, 1) \mapsto 0$: $\;b \le 0$ and $w_1 + w_2 + b \le 0$.
#
# Adding the first two gives $w_1 + w_2 + 2b > 0$, so $w_1 + w_2 + b > -b \ge 0$,
# contradicting the last. No line gets all four; a line gets three easily (for
# example $x_1 + x_2 - 0.5 > 0$ misses only $(1, 1)$). So **75% is the ceiling**.
#
# The picture says the same: the two points labelled 1 lie on one diagonal of the
# square, the two labelled 0 on the other, and the diagonals cross at $(0.5, 0.5)$. A
# half-plane that contains two points contains the segment between them, so the
# "1" side would contain $(0.5, 0.5)$, and so would the "0" side. Impossible.
#
# The same check by brute force: each of the $2^4 = 16$ ways to label the four
# corners, against a grid of lines. Fourteen labellings are separable by some line
# of the grid; the two that no line separates are XOR and its negation. The grid uses
# integer weights and half-integer biases, so no corner ever falls exactly on a line.

# %%
def line_accuracy(w1: float, w2: float, b: float, labels: np.ndarray) -> float:
    """Fraction of the four corners on the side of w1*x1 + w2*x2 + b = 0 that `labels` says."""
    predicted = (X @ np.array([w1, w2]) + b > 0).astype(np.float32)
    return float(np.mean(predicted == labels))


GRID = list(itertools.product([-2, -1, 0, 1, 2], [-2, -1, 0, 1, 2],
                              [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]))
separable, not_separable = [], []
for labels in itertools.product([0, 1], repeat=4):
    best = max(line_accuracy(w1, w2, b, np.array(labels)) for w1, w2, b in GRID)
    (separable if best == 1.0 else not_separable).append(("".join(map(str, labels)), best))
best_line = max(line_accuracy(w1, w2, b, Y[:, 0]) for w1, w2, b in GRID)
say(f"labellings of (00, 01, 10, 11) that a line separates: {len(separable)} of 16")
say(f"not separated by any line of the grid: {not_separable}")
say(f"best accuracy of any line on XOR (labels 0110): {best_line:.2f}")

# %% [markdown]
# ## 2. Training one layer anyway
#
# Logistic regression: `Linear(2, 1)` and a `Sigmoid`, trained with binary cross-entropy
# and Adam on all four points at once. Whatever the optimizer does, the accuracy
# cannot pass 75%; in fact the best that cross-entropy can do here is to give up:
# by the symmetry of the four points, the loss is smallest at $w = 0, b = 0$, which
# answers 0.5 for every point.
#
# **Read the answer off the line, not off the rounded probability.** A model answers
# 1 where its *logit* $z = w \cdot x + b$ (the output of the last `Linear`, before the
# `Sigmoid`) is positive. In exact arithmetic that is the same as $\sigma(z) > 0.5$.
# In float32 it is not: near $w = 0$ the sigmoid of a tiny negative $z$ rounds to
# exactly 0.5 (the cell below shows it), and a rule "$p \ge 0.5$ means 1" would then let
# rounding, not geometry, decide some points. The proof above holds for the sign of
# float32 $z$ as well (rounding never flips the sign of a sum), so that is what we
# count.

# %% [markdown]
# **The experiments are functions** that import what they use from `tinytorch.core`
# themselves. `framework.run(experiment, claims)` runs one on the code chosen above and
# checks the claims; when a claim does not hold it can run the same function again on
# other code, to find the module at fault.

# %%
def logit_accuracy(model) -> float:
    """Fraction of the four points where (logit > 0) equals the label; the logit is the
    output of every layer but the final Sigmoid."""
    from tinytorch.core.tensor import Tensor, no_grad

    with no_grad():
        z = model[:-1](Tensor(X)).data
    return float(np.mean((z > 0) == (Y > 0.5)))


def snapshot(model) -> dict[str, np.ndarray]:
    """A copy of every parameter of `model`, by name."""
    return {name: p.data.copy() for name, p in model.named_parameters()}


def unchanged(model, before: dict[str, np.ndarray]) -> list[str]:
    """The parameters that are still what they were in `before`: never trained."""
    return [name for name, p in model.named_parameters() if np.array_equal(p.data, before[name])]


def train(model, trial: Trial, label: str) -> list[float]:
    """Train `model` on the four XOR points with BCE and Adam; return the accuracy after
    every epoch (by the sign of the logit), printing progress now and then."""
    from tinytorch.core.dataloader import DataLoader, TensorDataset
    from tinytorch.core.losses import BinaryCrossEntropyLoss
    from tinytorch.core.optimizers import Adam
    from tinytorch.core.training import Trainer

    epochs = SETTINGS.epochs
    loader = DataLoader(TensorDataset(X, Y), batch_size=4)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.05), BinaryCrossEntropyLoss())
    accuracies = []
    for epoch in range(1, epochs + 1):
        loss = trainer.train_epoch(loader)
        accuracies.append(logit_accuracy(model))
        if epoch == 1 or epoch % max(1, epochs // 6) == 0 or epoch == epochs:
            trial.say(f"{label} epoch {epoch:4d}: loss {loss:.4f}, accuracy {accuracies[-1]:.2f}")
    return accuracies


def one_layer(trial: Trial) -> dict:
    """Logistic regression on XOR: its final and best accuracy."""
    from tinytorch.core.activations import Sigmoid
    from tinytorch.core.layers import Linear, Sequential

    model = Sequential(Linear(2, 1, rng=np.random.default_rng(SETTINGS.seed)), Sigmoid())
    before = snapshot(model)
    history = train(model, trial, "one layer   ")
    return {"model": model, "single_layer_accuracy": history[-1],
            "single_layer_best": max(history),
            "unchanged_parameters": len(unchanged(model, before))}


with no_grad():
    tiny = Sigmoid()(Tensor(np.array([-3e-8, 0.0, 3e-8], dtype=np.float32))).data
say(f"float32 sigmoid of -3e-8, 0, +3e-8: {tiny.tolist()}")

single = framework.run(one_layer, [
    Claim("single_layer_best", "<=", 0.75, "no epoch of one layer gets more than 3 of 4 points"),
    Claim("unchanged_parameters", "==", 0, "training changes every parameter"),
])
single_accuracy, best_seen = single["single_layer_accuracy"], single["single_layer_best"]
say(f"one layer: final accuracy {single_accuracy:.2f}, best in any epoch {best_seen:.2f}")

# %% [markdown]
# ## 3. One hidden layer
#
# Put a layer of `Tanh` units between the input and the output. The hidden units are
# new *features* of the input, learned by backpropagation; the output unit is still a
# single line, but a line in the hidden space, where the four points no longer sit on
# crossing diagonals.

# %%
def hidden_layer(trial: Trial) -> dict:
    """A hidden layer of Tanh units on XOR: its final accuracy."""
    from tinytorch.core.activations import Sigmoid, Tanh
    from tinytorch.core.layers import Linear, Sequential

    rng = np.random.default_rng(SETTINGS.seed + 1)
    model = Sequential(Linear(2, SETTINGS.hidden, rng=rng), Tanh(),
                       Linear(SETTINGS.hidden, 1, rng=rng), Sigmoid())
    before = snapshot(model)
    history = train(model, trial, "hidden layer")
    return {"model": model, "hidden_layer_accuracy": history[-1],
            "unchanged_parameters": len(unchanged(model, before))}


hidden = framework.run(hidden_layer, [
    Claim("hidden_layer_accuracy", "==", 1.0, "the hidden layer gets all four points right"),
    Claim("unchanged_parameters", "==", 0, "training changes every parameter"),
])
mlp, mlp_accuracy = hidden["model"], hidden["hidden_layer_accuracy"]

with no_grad():
    hidden_units = mlp[1](mlp[0](Tensor(X))).data
    probabilities = mlp(Tensor(X)).data[:, 0]
say("x1 x2 | hidden units (tanh)          | p(XOR = 1)")
for point, h, p in zip(X, hidden_units, probabilities, strict=True):
    say(f" {point[0]:.0f}  {point[1]:.0f} | {' '.join(f'{v:+.2f}' for v in h):28s} | {p:.3f}")
say(f"hidden layer: accuracy {mlp_accuracy:.2f}")

# %% [markdown]
# ## 4. The two decision boundaries
#
# The colour is the model's probability of class 1 over the plane; the black curve is
# its boundary, where the logit is 0. One layer can only draw a straight line, and near
# $w = 0$ its probabilities are all close to 0.5 (pale colours). The hidden layer bends
# the boundary so that the two "1" corners fall on one side and the two "0" corners on
# the other.

# %%
def output_map(model, grid: np.ndarray) -> np.ndarray:
    """The model's output for every point of `grid` (shape (..., 2)), same leading shape."""
    with no_grad():
        out = model(Tensor(grid.reshape(-1, 2).astype(np.float32))).data
    return out.reshape(grid.shape[:-1])


axis = np.linspace(-0.5, 1.5, 201)
grid = np.stack(np.meshgrid(axis, axis), axis=-1)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
panels = [(single["model"], f"one layer: accuracy {single_accuracy:.0%}"),
          (mlp, f"hidden layer ({SETTINGS.hidden} tanh): accuracy {mlp_accuracy:.0%}")]
for ax, (model, title) in zip(axes, panels, strict=True):
    p = output_map(model, grid)
    z = output_map(model[:-1], grid)
    filled = ax.contourf(axis, axis, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.8)
    if z.min() < 0 < z.max():
        ax.contour(axis, axis, z, levels=[0.0], colors="k", linewidths=2)
    ones = Y[:, 0] == 1
    ax.scatter(*X[ones].T, s=120, marker="o", color="tab:red", edgecolor="k", label="XOR = 1")
    ax.scatter(*X[~ones].T, s=120, marker="s", color="tab:blue", edgecolor="k", label="XOR = 0")
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$")
    ax.set_aspect("equal")
axes[0].legend(loc="upper center", fontsize=8)
fig.colorbar(filled, ax=axes, label="p(class 1)")
show(fig, "xor_boundaries")

# %% [markdown]
# ## What it proves, and what comes next
#
# * The limit is real and it is geometry, not a weak optimizer: no line gets more than
#   3 of the 4 XOR points, and trained logistic regression does not either.
# * Your framework trains a hidden layer: backpropagation through `Tanh` and two
#   `Linear` layers solves what a single layer cannot.
#
# Four points is a toy. Milestone 3 trains a hidden layer on real data: 1,797
# handwritten digits.

# %%
seconds = single["seconds"] + hidden["seconds"]
print(f"RESULT xor best_line_accuracy={best_line:.3f} separable_labellings={len(separable)} "
      f"single_layer_accuracy={single_accuracy:.3f} single_layer_best={best_seen:.3f} "
      f"hidden_layer_accuracy={mlp_accuracy:.3f} seconds={seconds:.2f} "
      f"{framework.result_line()}")
