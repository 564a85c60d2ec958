"""The three milestones run as scripts and meet their claims; their notebooks are in sync.

Each milestone ends with one line `RESULT <name> key=value ...`; the tests run the script
in a subprocess (as a student or CI would), parse that line and check the claim:

* perceptron 1958: the data are separable by construction (margin 0.1 around a hidden
  line), so by the perceptron convergence theorem the rule ends with 100% training
  accuracy; SGD with lr 1 on the perceptron criterion takes exactly Rosenblatt's steps,
  so the framework's weights equal the hand-written rule's bit for bit.
* XOR 1969: no line classifies more than 3 of the 4 XOR points (the proof in the
  milestone: w2+b>0, w1+b>0, b<=0 imply w1+w2+b>0), so the best line scores 3/4 = 0.75
  and a trained single layer never more; of the 2^4 = 16 labellings of the square's
  corners, all but XOR and XNOR are linearly separable: 14. A hidden layer gets 4/4.
* MLP digits 1986: at least 95% test accuracy (how long it takes is measured by
  ``bench/milestones_bench.py``, not here: no test depends on the machine's speed).

Here, in the instructor's repository, they run on the reference code; ``test_mine.py``
runs them in a published student repository, on a student's exported modules.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MILESTONES = ROOT / "milestones"
PERCEPTRON = MILESTONES / "01_perceptron_1958" / "perceptron.py"
XOR = MILESTONES / "02_xor_1969" / "xor.py"
DIGITS = MILESTONES / "03_mlp_digits_1986" / "mlp_digits.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

from coursekit.authoring import milestones as build  # noqa: E402
from coursekit.authoring.colab import course_colab_source  # noqa: E402
from coursekit.course import Course, CourseError  # noqa: E402

COURSE = Course(ROOT)


def run_script(
    script: Path, *args: str, timeout: float = 120
) -> tuple[subprocess.CompletedProcess, float]:
    """Run a milestone script with this Python from the repository root; (process, seconds)."""
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, str(script), *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return process, time.perf_counter() - started


def result(process: subprocess.CompletedProcess, name: str) -> dict[str, str]:
    """The key=value pairs of the script's `RESULT <name>` line (the last line it printed)."""
    assert process.returncode == 0, f"script failed:\n{process.stdout}\n{process.stderr}"
    lines = process.stdout.strip().splitlines()
    assert lines and lines[-1].startswith(f"RESULT {name} "), f"no RESULT line:\n{process.stdout}"
    return dict(item.split("=", 1) for item in lines[-1].split()[2:])


def assert_png(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG file"


def test_perceptron_learns_separable_data(tmp_path: Path) -> None:
    process, _ = run_script(PERCEPTRON, "--out", str(tmp_path))
    values = result(process, "perceptron")
    assert float(values["train_accuracy"]) == 1.0, values
    assert values["matches_hand_rule"] == "True", values
    # converged means the last epoch made no mistake, so epochs <= the --epochs default of 50
    assert 1 <= int(values["epochs"]) < 50, values
    assert int(values["updates"]) >= 1, values
    assert "mistakes" in process.stdout                      # progress per epoch
    assert_png(tmp_path / "perceptron_boundary.png")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_perceptron_other_data_quiet(tmp_path: Path, seed: int) -> None:
    process, _ = run_script(PERCEPTRON, "--quiet", "--seed", str(seed), "--out", str(tmp_path))
    values = result(process, "perceptron")
    assert float(values["train_accuracy"]) == 1.0 and values["matches_hand_rule"] == "True"
    assert process.stdout.strip().count("\n") == 0, "--quiet prints only the RESULT line"


def test_xor_single_layer_limit_and_hidden_layer(tmp_path: Path) -> None:
    process, _ = run_script(XOR, "--out", str(tmp_path))
    values = result(process, "xor")
    assert float(values["best_line_accuracy"]) == 0.75, values
    assert int(values["separable_labellings"]) == 14, values
    assert float(values["single_layer_accuracy"]) <= 0.75, values
    assert float(values["single_layer_best"]) <= 0.75, values
    assert float(values["hidden_layer_accuracy"]) == 1.0, values
    assert_png(tmp_path / "xor_boundaries.png")


@pytest.mark.parametrize("seed", [7, 8])
def test_xor_other_seeds_quick(tmp_path: Path, seed: int) -> None:
    process, _ = run_script(XOR, "--quiet", "--epochs", "300", "--seed", str(seed),
                            "--out", str(tmp_path))
    values = result(process, "xor")
    assert float(values["single_layer_best"]) <= 0.75, values
    assert float(values["hidden_layer_accuracy"]) == 1.0, values


def test_mlp_digits_reaches_95_percent(tmp_path: Path) -> None:
    process, wall = run_script(DIGITS, "--out", str(tmp_path), timeout=300)
    values = result(process, "mlp_digits")
    assert float(values["test_accuracy"]) >= 0.95, values
    assert 0 < float(values["seconds"]) < wall, values
    assert values["checkpoint_ok"] == "True", values
    assert process.stdout.count("test accuracy") >= int(values["epochs"]), "one line per epoch"
    for name in ("mlp_digits_curves.png", "mlp_digits_misclassified.png"):
        assert_png(tmp_path / name)
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as archive:
        assert "checkpoint.json" in archive.files


def test_mlp_digits_refuses_a_changed_data_file(tmp_path: Path) -> None:
    # a copy of the milestone next to a data/digits.npz that is not the course's file
    folder = tmp_path / "course" / "milestones" / "03_mlp_digits_1986"
    folder.mkdir(parents=True)
    shutil.copy(DIGITS, folder / DIGITS.name)
    data = tmp_path / "course" / "data"
    data.mkdir()
    buffer = io.BytesIO()
    np.savez(buffer, images=np.zeros((10, 8, 8), np.uint8), labels=np.arange(10, dtype=np.uint8))
    (data / "digits.npz").write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    process, _ = run_script(folder / DIGITS.name, "--quiet", "--epochs", "1",
                            "--out", str(tmp_path / "out"))
    assert process.returncode != 0, process.stdout
    assert "SHA-256" in process.stderr and digest in process.stderr, process.stderr
    assert "RESULT" not in process.stdout


def test_notebooks_in_sync() -> None:
    sources = build.milestones(COURSE)
    assert [ms.rel_source for ms in sources] == [
        "milestones/01_perceptron_1958/perceptron.py",
        "milestones/02_xor_1969/xor.py",
        "milestones/03_mlp_digits_1986/mlp_digits.py",
    ]
    stale = build.stale(COURSE)
    assert not stale, f"out of date: {stale}; run: course build"


def test_build_is_deterministic_and_keeps_every_cell() -> None:
    """Every "# %%" cell of the source, in order, after the Colab set-up cell (the first
    code cell, as in the modules' notebooks); stable ids; no outputs."""
    colab = course_colab_source(COURSE)
    for ms in build.milestones(COURSE):
        text = build.notebook_text(ms, colab)
        assert text == build.notebook_text(ms, colab)
        nb = nbformat.reads(text, as_version=4)
        headers = sum(1 for line in ms.source.read_text().splitlines()
                      if line.startswith("# %%"))
        assert len(nb.cells) == headers + 1, ms.source
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert code[0].id == build.COLAB_CELL_ID and code[0].source == colab
        assert code[1].source.startswith("REFERENCE_ONLY = False"), "the switch comes first"
        ids = [cell.id for cell in nb.cells if cell.id != build.COLAB_CELL_ID]
        assert ids == [f"cell-{i:03d}" for i in range(headers)]
        assert all(cell.get("outputs", []) == [] for cell in nb.cells)


def test_needs_name_what_a_milestone_imports(tmp_path: Path) -> None:
    """NEEDS is what publishing goes by: a milestone that imports a module NEEDS leaves out,
    or names one the course does not have, is refused with the reason."""
    xor = build.milestones(COURSE)[1]
    assert [m.folder for m in build.needs(COURSE, xor)] == [m.folder for m in COURSE.modules()]
    perceptron = build.needs(COURSE, build.milestones(COURSE)[0])
    assert "04_losses" not in [m.folder for m in perceptron]
    text = xor.source.read_text()
    cases = {
        "left-out": (text.replace('"04_losses", ', ""), "tinytorch.core.losses"),
        "unknown": (text.replace('"04_losses"', '"04_lossez"'), "04_lossez"),
        "missing": (text.replace("NEEDS = (", "NEEDED = ("), "no NEEDS"),
    }
    for name, (changed, words) in cases.items():
        folder = tmp_path / name / "02_xor_1969"
        folder.mkdir(parents=True)
        (folder / "xor.py").write_text(changed)
        with pytest.raises(CourseError, match=words.replace(".", r"\.")):
            build.needs(COURSE, build.Milestone("02_xor_1969", folder / "xor.py"))


def test_notebooks_run_in_a_kernel(tmp_path: Path) -> None:
    """In a notebook the scripts take their defaults (no argparse of the kernel's argv),
    show plots inline and still end with the RESULT line."""
    nbclient = pytest.importorskip("nbclient")
    for ms in build.milestones(COURSE):
        source = ms.source
        nb = nbformat.reads(ms.notebook.read_text(), as_version=4)
        client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
        outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
        assert not [out for out in outputs if out.get("name") == "stderr"], source
        assert any("image/png" in out.get("data", {}) for out in outputs), f"{source}: no plot"
        last = nb.cells[-1].outputs[-1]["text"]
        assert last.startswith("RESULT "), f"{source}: {last!r}"
