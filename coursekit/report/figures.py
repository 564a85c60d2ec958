"""The report's figures, drawn with Matplotlib (Agg) and returned as PNG bytes.

Every figure has a title, axis labels and units; the numbers behind each are written to a
CSV file by :mod:`coursekit.report.page`.
"""

from __future__ import annotations

import io
import math
from typing import Any

from coursekit.report.analysis import HIST_EDGES, Item, ModuleStats

DPI = 110
BLUE, ORANGE, GREY, RED = "#1f5fa8", "#d9822b", "#8a8a8a", "#c0392b"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def histograms(stats: list[ModuleStats]) -> bytes:
    """Score distribution per module: one small histogram each (percent of the points)."""
    plt = _pyplot()
    shown = [s for s in stats if s.submitted and s.max_score > 0]
    cols = min(4, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    height = 2.3 * rows + 0.7
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.6, height), squeeze=False)
    # fixed margins: a layout engine would cost more than all the drawing
    fig.subplots_adjust(left=0.75 / (2.6 * cols + 0.6), right=0.98, bottom=0.6 / height,
                        top=1 - 0.55 / height, wspace=0.3, hspace=0.45)
    width = HIST_EDGES[1] - HIST_EDGES[0]
    for ax, s in zip(axes.flat, shown, strict=False):
        ax.bar(HIST_EDGES[:-1], s.hist, width=width * 0.92, align="edge", color=BLUE)
        ax.set_title(f"{s.name} (n = {s.submitted})", fontsize=9)
        ax.set_xlim(0, 100)
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.tick_params(labelsize=7)
        ax.yaxis.get_major_locator().set_params(integer=True, nbins=4)
    fig.supxlabel("score (% of the module's points)", fontsize=9)
    fig.supylabel("submissions", fontsize=9)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    fig.suptitle("Score distribution per module", fontsize=11)
    return _png(fig)


def progress(stats: list[ModuleStats]) -> bytes:
    """The class over the modules: mean and median score, share handed in."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    fig.subplots_adjust(left=0.09, right=0.98, top=0.91, bottom=0.33)
    names = [s.name for s in stats]
    x = list(range(len(stats)))

    def series(values: list[float | None]) -> list[float]:
        return [math.nan if v is None else v for v in values]

    ax.plot(x, series([s.mean_pct for s in stats]), "o-", color=BLUE,
            label="mean score (% of points)")
    ax.plot(x, series([s.median_pct for s in stats]), "s--", color=ORANGE,
            label="median score (% of points)")
    ax.plot(x, series([s.handed_in_pct for s in stats]), "^:", color=GREY,
            label="handed in (% of students)")
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("module")
    ax.set_ylabel("percent")
    ax.set_title("The class over the modules")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.33), ncol=3,
              frameon=False)
    return _png(fig)


def item_map(items: list[Item], prose: list[Item]) -> bytes:
    """Every test cell by difficulty and discrimination; the ones to check the prose of in
    red and numbered as in their list."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    fig.subplots_adjust(left=0.1, right=0.98, top=0.92, bottom=0.13)
    flagged = {id(it): rank for rank, it in enumerate(prose, 1)}
    plain = [it for it in items if id(it) not in flagged and it.r_pb is not None]
    ax.scatter([100 * it.fail_rate for it in plain], [it.r_pb for it in plain], s=18,
               color=BLUE, alpha=0.7, label="test cell")
    marked = [it for it in prose if it.r_pb is not None]
    if marked:
        ax.scatter([100 * it.fail_rate for it in marked], [it.r_pb for it in marked], s=36,
                   color=RED, marker="D", label="check the prose")
        offsets = ((4, 4), (4, -11), (-11, 4), (-11, -11))  # neighbours' numbers apart
        for it in marked:
            rank = flagged[id(it)]
            ax.annotate(str(rank), (100 * it.fail_rate, it.r_pb), fontsize=8,
                        xytext=offsets[(rank - 1) % 4], textcoords="offset points", color=RED)
    ax.axhline(0, color=GREY, lw=0.8)
    ax.set_xlim(-3, 103)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("difficulty: submissions failing the test (%)")
    ax.set_ylabel("discrimination (point-biserial r)")
    ax.set_title("Item analysis: every graded test cell")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return _png(fig)


def submission_times(curves: dict[str, list[float]]) -> bytes:
    """Cumulative share of each module's submissions against days from its due date."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    fig.subplots_adjust(left=0.1, right=0.98, top=0.91, bottom=0.14)
    for name, days in curves.items():
        if not days:
            continue
        xs = sorted(days)
        ys = [100.0 * (i + 1) / len(xs) for i in range(len(xs))]
        ax.step(xs, ys, where="post", label=name)
    ax.axvline(0, color=RED, lw=1.2, ls="--", label="due")
    ax.set_ylim(0, 102)
    ax.set_xlabel("days from the due date (negative: before it)")
    ax.set_ylabel("submissions handed in (% of the module's)")
    ax.set_title("Submissions against the due date")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    return _png(fig)


def late_work(stats: list[ModuleStats]) -> bytes:
    """Late submissions and the points their penalties took off, per module."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, 3.6))
    fig.subplots_adjust(left=0.08, right=0.98, top=0.84, bottom=0.3, wspace=0.3)
    x = list(range(len(stats)))
    names = [s.name for s in stats]
    left.bar(x, [s.late for s in stats], color=ORANGE, label="late")
    left.bar(x, [s.penalised for s in stats], color=RED, width=0.5, label="with a penalty")
    left.set_title("Late submissions")
    left.set_xlabel("module")
    left.set_ylabel("submissions")
    left.yaxis.get_major_locator().set_params(integer=True)
    left.legend(fontsize=8)
    right.bar(x, [s.points_off for s in stats], color=RED)
    right.set_title("Points taken off by late penalties")
    right.set_xlabel("module")
    right.set_ylabel("points (sum over submissions)")
    for ax in (left, right):
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Late work per module", fontsize=11)
    return _png(fig)
