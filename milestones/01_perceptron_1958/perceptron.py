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
# # Milestone 1: the perceptron (1958)
#
# In 1958 the psychologist Frank Rosenblatt published *The Perceptron: a probabilistic
# model for information storage and organization in the brain*, and at the Cornell
# Aeronautical Laboratory he built it as a machine, the Mark I Perceptron: a grid of
# photocells for an eye, motor-driven potentiometers for weights. It was the first
# machine that *learned* to classify from examples instead of being wired for the task.
#
# The perceptron is one weighted sum and a threshold:
#
# $$\hat y = \operatorname{sign}(w \cdot x + b)$$
#
# and Rosenblatt's learning rule is just as short: show the machine one example at a
# time; when it answers wrongly, that is when $y\,(w \cdot x + b) \le 0$ for a label
# $y \in \{-1, +1\}$, move the weights toward the right answer:
#
# $$w \leftarrow w + y\,x, \qquad b \leftarrow b + y.$$
#
# The **perceptron convergence theorem** (Block and Novikoff, 1962) says that if some
# line separates the two classes, this rule stops making mistakes after a finite
# number of updates, however the examples are ordered.
#
# **What this milestone proves about your framework.** The 1958 rule is gradient
# descent in disguise. Take the *perceptron criterion* as the loss of one example,
#
# $$L(w, b) = \max\bigl(0,\; -y\,(w \cdot x + b)\bigr),$$
#
# which is zero for a correct answer and grows with the size of a wrong one. Its
# gradient is $-y\,x$ (and $-y$ for $b$) on a mistake and zero otherwise, so one SGD step
# with learning rate 1 on one example **is** Rosenblatt's update. Below, the model is a
# `Linear(2, 1)` layer, the loss is built from `ReLU`, the gradient comes from your
# autograd, the update from your `SGD`, the loop from your `Trainer` with a
# `DataLoader` of batch size 1. A hand-written version of the 1958 rule then runs on
# the same examples in the same order, and the two must end with *identical* weights.
#
# Run it as a notebook, or as a script:
#
# ```bash
# python milestones/01_perceptron_1958/perceptron.py [--epochs N] [--quiet] [--out DIR]
# ```
#
# As a script it prints one line per epoch, saves its plot as a PNG in `--out`, and
# ends with a `RESULT` line.

# %%
import argparse
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.layers import Linear
from tinytorch.core.optimizers import SGD
from tinytorch.core.tensor import Tensor, no_grad
from tinytorch.core.training import Trainer

IN_NOTEBOOK = "ipykernel" in sys.modules  # True inside Jupyter, False as a script
if not IN_NOTEBOOK:
    plt.switch_backend("Agg")  # no screen needed: plots go to PNG files
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()


def parse_settings(argv: list[str] | None) -> argparse.Namespace:
    """Command-line settings; in a notebook the defaults (edit them here to experiment)."""
    parser = argparse.ArgumentParser(description="Milestone 1: Rosenblatt's perceptron (1958)")
    parser.add_argument("--epochs", type=int, default=50,
                        help="most passes over the data (training stops at the first clean pass)")
    parser.add_argument("--points", type=int, default=100, help="number of training points")
    parser.add_argument("--seed", type=int, default=1958, help="seed of the data and the model")
    parser.add_argument("--quiet", action="store_true", help="print only the RESULT line")
    parser.add_argument("--out", type=Path, default=HERE / "output", help="folder for the plot")
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


# %% [markdown]
# ## 1. Data that a line can separate
#
# Points are drawn uniformly from the square $[-1, 1]^2$ and labelled by the side of a
# hidden line they fall on. Points closer to that line than a small margin are thrown
# away and drawn again, so the two classes are separated by a gap: the situation the
# convergence theorem is about. The generator is seeded, so every run sees the same
# points.

# %%
def make_separable(
    n: int, margin: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` points in [-1, 1]^2 at distance >= `margin` from a random line, labelled +-1.

    Returns (points (n, 2) float32, labels (n, 1) float32 in {-1, +1},
    hidden line (a, b, c) with a*x + b*y + c = 0 and a^2 + b^2 = 1).
    """
    angle = rng.uniform(0.0, 2.0 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])
    offset = rng.uniform(-0.3, 0.3)
    points = np.empty((0, 2))
    while len(points) < n:
        candidates = rng.uniform(-1.0, 1.0, size=(2 * n, 2))
        keep = np.abs(candidates @ normal + offset) >= margin
        points = np.concatenate([points, candidates[keep]])[:n]
    labels = np.where(points @ normal + offset > 0, 1.0, -1.0)
    line = np.array([*normal, offset])
    return points.astype(np.float32), labels.astype(np.float32)[:, None], line


rng = np.random.default_rng(SETTINGS.seed)
X, y, hidden_line = make_separable(SETTINGS.points, margin=0.1, rng=rng)
say(f"{len(X)} points, {int((y > 0).sum())} labelled +1 and {int((y < 0).sum())} labelled -1")

# %% [markdown]
# ## 2. The perceptron, built from the framework
#
# The model is a `Linear(2, 1)`: $z = x W + b$, with a weight matrix of shape (2, 1).
# Its answer is the sign of $z$. The loss is the perceptron criterion above, written
# with the framework's operations: `ReLU()(-(targets * outputs))` is
# $\max(0, -y z)$. The `Trainer` runs the loop: for each batch of one example, forward,
# `backward()`, `SGD.step()` with learning rate 1, `zero_grad()`.
#
# The trainer records the gradient norm of every step in `history["grad_norms"]`. A
# step on a correctly classified example has a zero gradient, so the number of nonzero
# norms in an epoch is the number of mistakes the perceptron made in that epoch.
# Training stops after the first epoch without a mistake.

# %%
class PerceptronCriterion:
    """Loss of Rosenblatt's rule: mean of max(0, -y * z) for scores z and labels y in {-1, +1}."""

    def __init__(self) -> None:
        self.relu = ReLU()

    def __call__(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return self.relu(-(targets * outputs)).mean()


def accuracy(model: Linear, points: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of points whose sign(z) equals the label (z = 0 counts as wrong)."""
    with no_grad():
        z = model(Tensor(points)).data
    return float(np.mean(np.sign(z) == labels))


model = Linear(2, 1, rng=np.random.default_rng(SETTINGS.seed + 1))
start_weight, start_bias = model.weight.data.copy(), model.bias.data.copy()
loader = DataLoader(TensorDataset(X, y), batch_size=1, shuffle=True, seed=SETTINGS.seed)
trainer = Trainer(model, SGD(model.parameters(), lr=1.0), PerceptronCriterion())

started = time.perf_counter()
mistakes_per_epoch: list[int] = []
boundaries = [np.concatenate([model.weight.data[:, 0], model.bias.data])]  # (w1, w2, b) per epoch
for epoch in range(SETTINGS.epochs):
    trainer.train_epoch(loader)
    norms = trainer.history["grad_norms"][-len(loader):]
    mistakes = sum(1 for norm in norms if norm > 0)
    mistakes_per_epoch.append(mistakes)
    boundaries.append(np.concatenate([model.weight.data[:, 0], model.bias.data]))
    say(f"epoch {epoch + 1:3d}: {mistakes:3d} mistakes, training accuracy "
        f"{accuracy(model, X, y):.3f}")
    if mistakes == 0:
        break
seconds = time.perf_counter() - started
final_accuracy = accuracy(model, X, y)
updates = sum(mistakes_per_epoch)
say(f"converged after {len(mistakes_per_epoch)} epochs and {updates} updates: "
    f"accuracy {final_accuracy:.3f}")

# %% [markdown]
# ## 3. The 1958 rule, written by hand
#
# The same start, the same examples in the same order (the loader's order of epoch $e$
# is `loader.epoch_order(e)`), and the rule exactly as Rosenblatt stated it, in plain
# NumPy. If the framework's gradient and update are right, both runs end with the same
# weights, bit for bit: every number involved is a sum or difference of the same
# float32 values.

# %%
def rosenblatt(points: np.ndarray, labels: np.ndarray, w: np.ndarray, b: np.ndarray,
               orders: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rosenblatt's rule: for each example in each epoch's order, on a mistake
    (y * z <= 0) add y * x to the weights and y to the bias. Returns (w, b)."""
    w, b = w.copy(), b.copy()
    for order in orders:
        for i in order:
            x_i, y_i = points[i : i + 1], labels[i]
            z = x_i @ w + b
            if y_i[0] * z[0, 0] <= 0:
                w += x_i.T * y_i
                b += y_i
    return w, b


orders = [loader.epoch_order(e) for e in range(len(mistakes_per_epoch))]
hand_w, hand_b = rosenblatt(X, y, start_weight, start_bias, orders)
same = bool(np.array_equal(hand_w, model.weight.data) and np.array_equal(hand_b, model.bias.data))
say(f"framework weights {model.weight.data[:, 0]}, bias {model.bias.data}")
say(f"hand-rule weights {hand_w[:, 0]}, bias {hand_b}")
say(f"identical: {same}")

# %% [markdown]
# ## 4. The decision boundary
#
# The line $w_1 x_1 + w_2 x_2 + b = 0$ after each epoch, faint for early epochs and solid
# at the end, over the points it separates. The dashed line is the hidden line that
# labelled the data: the perceptron finds *a* separating line, not necessarily that
# one. Any line in the gap will do, and the rule stops at the first it reaches.

# %%
def line_points(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two far-apart points of the line p[0]*x + p[1]*y + p[2] = 0 (for plotting)."""
    a, b, c = (float(v) for v in params)
    t = np.array([-3.0, 3.0])
    if abs(b) >= abs(a):
        return t, -(a * t + c) / b
    return -(b * t + c) / a, t


fig, ax = plt.subplots(figsize=(5.5, 5.5))
ax.plot(*line_points(boundaries[0]), ":", color="tab:gray", lw=1, label="start")
for k, params in enumerate(boundaries[1:-1], start=1):
    ax.plot(*line_points(params), color="tab:gray", alpha=0.15 + 0.5 * k / len(boundaries), lw=1)
ax.plot(*line_points(hidden_line), "k--", lw=1, label="hidden line")
ax.plot(*line_points(boundaries[-1]), color="tab:green", lw=2.5, label="perceptron")
positive = y[:, 0] > 0
ax.scatter(*X[positive].T, marker="o", color="tab:blue", label="+1")
ax.scatter(*X[~positive].T, marker="x", color="tab:red", label="-1")
ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xlabel="$x_1$", ylabel="$x_2$",
       title=f"Perceptron: {updates} updates, accuracy {final_accuracy:.0%}")
ax.set_aspect("equal")
ax.legend(loc="lower left", fontsize=8)
show(fig, "perceptron_boundary")

# %% [markdown]
# ## What it proves, and what comes next
#
# * Your `Linear`, `ReLU`, autograd, `SGD`, `DataLoader` and `Trainer` reproduce a
#   learning machine of 1958 *exactly*: the same weights as the rule written by hand.
# * A line that separates the classes exists, so the rule converges, as the theorem
#   promised: a training accuracy of 100%.
#
# The theorem has a condition: *if* a separating line exists. Milestone 2 asks what
# happens when it does not.

# %%
print(f"RESULT perceptron train_accuracy={final_accuracy:.3f} epochs={len(mistakes_per_epoch)} "
      f"updates={updates} matches_hand_rule={same} seconds={seconds:.2f}")
