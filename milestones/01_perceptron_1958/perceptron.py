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
# **Whose code runs.** In your student repository this notebook runs on *your* modules:
# those you exported from your completed notebooks (`python -m tinytorch.mine`, or the last
# cell of each notebook), and the course's reference code for the others. The next cell
# prints which is which. Set `REFERENCE_ONLY = True` in it to run on the reference code
# alone, for comparison. If your code raises, or training does not do what the milestone
# claims, the milestone runs the experiment again with one of your modules at a time and
# names the module at fault, with your numbers beside the reference's.
#
# Run it as a notebook, or as a script:
#
# ```bash
# python milestones/01_perceptron_1958/perceptron.py [--epochs N] [--quiet] [--out DIR]
#     [--reference-only]
# ```
#
# As a script it prints one line per epoch, saves its plot as a PNG in `--out`, and
# ends with a `RESULT` line.

# %%
REFERENCE_ONLY = False  # True: run on the course's reference code alone, for comparison

import argparse
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tinytorch.milestone import Claim, Trial, use_framework

#: The modules this milestone runs on (autograd: `backward()`; training: the `Trainer`).
NEEDS = ("01_tensor", "02_activations", "03_layers", "05_dataloader", "06_autograd",
         "07_optimizers", "08_training")
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


framework = use_framework("Milestone 1", NEEDS, quiet=SETTINGS.quiet,
                          reference_only=REFERENCE_ONLY or SETTINGS.reference_only)

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
def perceptron_criterion(outputs, targets):
    """Loss of Rosenblatt's rule: mean of max(0, -y * z) for scores z and labels y in {-1, +1}."""
    from tinytorch.core.activations import ReLU

    return ReLU()(-(targets * outputs)).mean()


def accuracy(model, points: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of points whose sign(z) equals the label (z = 0 counts as wrong)."""
    from tinytorch.core.tensor import Tensor, no_grad

    with no_grad():
        z = model(Tensor(points)).data
    return float(np.mean(np.sign(z) == labels))


def train_perceptron(trial: Trial) -> dict:
    """Train Linear(2, 1) with the perceptron criterion and SGD(lr=1), one example per step,
    until an epoch without a mistake; the model, its start and what happened per epoch."""
    from tinytorch.core.dataloader import DataLoader, TensorDataset
    from tinytorch.core.layers import Linear
    from tinytorch.core.optimizers import SGD
    from tinytorch.core.training import Trainer

    model = Linear(2, 1, rng=np.random.default_rng(SETTINGS.seed + 1))
    start = (model.weight.data.copy(), model.bias.data.copy())
    loader = DataLoader(TensorDataset(X, y), batch_size=1, shuffle=True, seed=SETTINGS.seed)
    trainer = Trainer(model, SGD(model.parameters(), lr=1.0), perceptron_criterion)
    mistakes_per_epoch: list[int] = []
    boundaries = [np.concatenate([model.weight.data[:, 0], model.bias.data])]  # (w1, w2, b)
    for epoch in range(SETTINGS.epochs):
        trainer.train_epoch(loader)
        norms = trainer.history["grad_norms"][-len(loader):]
        mistakes = sum(1 for norm in norms if norm > 0)
        mistakes_per_epoch.append(mistakes)
        boundaries.append(np.concatenate([model.weight.data[:, 0], model.bias.data]))
        trial.say(f"epoch {epoch + 1:3d}: {mistakes:3d} mistakes, training accuracy "
                  f"{accuracy(model, X, y):.3f}")
        if mistakes == 0:
            break
    orders = [loader.epoch_order(e) for e in range(len(mistakes_per_epoch))]
    return {"model": model, "start": start, "orders": orders, "boundaries": boundaries,
            "mistakes_per_epoch": mistakes_per_epoch}

# %% [markdown]
# ## 3. The 1958 rule, written by hand
#
# The same start, the same examples in the same order (the loader's order of epoch $e$
# is `loader.epoch_order(e)`), and the rule exactly as Rosenblatt stated it, in plain
# NumPy. If the framework's gradient and update are right, both runs end with the same
# weights, bit for bit: every number involved is a sum or difference of the same
# float32 values.
#
# The experiment below trains the perceptron with the framework, runs the hand-written
# rule on the same examples in the same order, and compares. Like every experiment of the
# milestones it imports what it uses itself (`framework.run` can then run it again on
# other code, to find a module at fault).

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


def experiment(trial: Trial) -> dict:
    """The framework's perceptron against the hand-written rule."""
    run = train_perceptron(trial)
    model = run["model"]
    hand_w, hand_b = rosenblatt(X, y, *run["start"], run["orders"])
    same = bool(np.array_equal(hand_w, model.weight.data)
                and np.array_equal(hand_b, model.bias.data))
    return {**run, "hand": (hand_w, hand_b), "train_accuracy": accuracy(model, X, y),
            "epochs": len(run["mistakes_per_epoch"]), "updates": sum(run["mistakes_per_epoch"]),
            "matches_hand_rule": same}


result = framework.run(experiment, [
    Claim("train_accuracy", "==", 1.0, "the rule separates the two classes"),
    Claim("matches_hand_rule", "==", True, "the framework's weights equal the 1958 rule's"),
])
model, boundaries = result["model"], result["boundaries"]
final_accuracy, updates = result["train_accuracy"], result["updates"]
same = result["matches_hand_rule"]
hand_w, hand_b = result["hand"]
say(f"converged after {result['epochs']} epochs and {updates} updates: "
    f"accuracy {final_accuracy:.3f}")
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
print(f"RESULT perceptron train_accuracy={final_accuracy:.3f} epochs={result['epochs']} "
      f"updates={updates} matches_hand_rule={same} seconds={result['seconds']:.2f} "
      f"{framework.result_line()}")
