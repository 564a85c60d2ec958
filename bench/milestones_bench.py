"""The milestones on a student's own modules, on a Binder-sized machine: how long they take.

The claim: the digits MLP of milestone 3, run on a student's correct framework, reaches the
reference's accuracy (>= 95%) within a minute on a machine the size of a Binder session
(one core here: mybinder.org guarantees less than that and allows up to about two).

What is timed is what a student does: a student repository published through the last
module (as `course publish` writes it), every notebook completed with the reference
solutions and exported with `python -m tinytorch.mine`, then each milestone notebook run
top to bottom in a fresh kernel (as Run All does), with this process and everything it
starts held to `--cores` CPU cores. For each milestone the script prints the wall time
of the whole notebook and of its training, the notebook's claims, and the ratio of the
wall time to the 60 s budget, with PASS or FAIL. Informational: always exits 0.

    .venv/bin/python bench/milestones_bench.py [--cores 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 60.0


def completed(release: Path, source: Path) -> dict:
    """A release notebook with the reference solutions written in (no region markers)."""
    solutions = {}
    for cell in json.loads(source.read_text(encoding="utf-8"))["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            solutions[meta["grade_id"]] = "\n".join(
                line for line in text.splitlines()
                if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line)
    nb = json.loads(release.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in solutions:
            cell["source"] = solutions[gid]
    return nb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=1, help="CPU cores to run on (default 1)")
    parser.add_argument("--keep", type=Path, help="build the student repository here and keep it")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import nbclient
    import nbformat

    from coursekit.authoring.milestones import milestones
    from coursekit.course import Course
    from coursekit.publishing.publish import publish

    available = sorted(os.sched_getaffinity(0))
    cores = set(available[: max(1, args.cores)])
    os.sched_setaffinity(0, cores)  # children (the exporter, the kernels) inherit it
    print(f"cores: {sorted(cores)} of {available}; budget {BUDGET:.0f} s per milestone")
    course = Course(ROOT)
    with tempfile.TemporaryDirectory(prefix="milestones-bench-") as tmp:
        repo = (args.keep or Path(tmp)) / "student"
        publish(course, repo, course.modules()[-1].number, preview=True, log=lambda line: None)
        for m in course.modules():
            path = repo / "release" / m.folder / m.notebook_name
            path.write_text(json.dumps(completed(path, m.source_notebook)), encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=str(repo))
        env.pop("MPLBACKEND", None)
        started = time.perf_counter()
        export = subprocess.run([sys.executable, "-m", "tinytorch.mine"], cwd=repo, env=env,
                                capture_output=True, text=True)
        print(f"export of {len(course.modules())} notebooks: {time.perf_counter() - started:.1f} s "
              f"(exit {export.returncode})")
        if export.returncode != 0:
            print(export.stdout + export.stderr)
            return 0
        for ms in milestones(course):
            nb = nbformat.read(repo / ms.rel_notebook, as_version=4)
            client = nbclient.NotebookClient(
                nb, timeout=600, kernel_name="python3", allow_errors=True,
                resources={"metadata": {"path": str((repo / ms.rel_notebook).parent)}})
            started = time.perf_counter()
            client.execute(env=env, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - started
            text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                           for out in cell.outputs if out.output_type == "stream")
            result = [line for line in text.splitlines() if line.startswith("RESULT ")]
            claims = [line for line in text.splitlines() if line.startswith("claims hold")]
            ok = bool(result) and "culprits=none" in result[-1] and wall <= BUDGET
            print(f"{ms.folder}: whole notebook {wall:.1f} s = {wall / BUDGET:.2f} of the budget "
                  f"{'PASS' if ok else 'FAIL'}")
            for line in claims + result[-1:]:
                print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
