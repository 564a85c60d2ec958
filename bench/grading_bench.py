"""Grading a class: ``course grade --workers 2`` against plain serial ``nbgrader autograde``.

40 submissions of module 08 (20 copies of the solution, 20 partial solutions, as
``course examples`` writes them) are graded in one run, three ways:

* **plain**: one ``nbgrader autograde 08_training`` over all 40 (nbgrader grades one after
  another), with nbgrader's own autograde preprocessors (no limits), no feedback;
* **course**: ``course grade --workers 2 --no-feedback`` (sandbox, limits, flags, merge
  into the course gradebook), and for information the same with feedback HTML;
* **unsandboxed**: the same with ``--no-sandbox``, run in turns with the sandboxed one
  (``--sandbox-runs`` times each; the fastest of each counts), for the sandbox's cost;
* **bare**: the solution notebook executed with nbclient alone, a few times;
* **dask**: ``course grade --scheduler`` on a Dask cluster of this machine (``dask
  scheduler`` and two ``dask worker --nthreads 1``, started by the bench), in turns with
  ``course grade --workers 2`` (``--dask-runs`` times each; the fastest of each counts).

Goals: plain / course >= 1.8 on 2 cores; course time per submission (wall time x workers
/ submissions) / bare <= 1.3; the sandbox costs at most 10% per submission, in CPU time
(of every process of the run: workers, fork servers, kernels, bubblewrap) and in wall time;
the Dask path's throughput once grading runs (submissions after the first, per second
after the first result) at least 0.9x the local pool's. Each path's fixed start-up cost
(time to the first result less one submission's worker time) is reported. Every grading
process and kernel runs with one BLAS thread.

``--only capacity`` measures instead the worker time of one submission of every module
(with feedback) and works out from it how long a class takes on 1, 4 and 16 machines.

Run: .venv/bin/python bench/grading_bench.py [--students 40] [--bare-runs 4]
     [--sandbox-runs 2] [--dask-runs 2] [--only dask|capacity] [--per-module 10]
Always exits 0; prints the numbers and PASS or FAIL against the goals.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from coursekit.course import Course  # noqa: E402
from coursekit.authoring.examples import student_notebook  # noqa: E402

MODULE = "08_training"
SPEEDUP_GOAL = 1.8
OVERHEAD_GOAL = 1.3
SANDBOX_GOAL = 1.10
DASK_GOAL = 0.9
BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def env() -> dict[str, str]:
    """This environment with one BLAS thread and the course on PYTHONPATH."""
    out = dict(os.environ, **BLAS)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), out.get("PYTHONPATH")]))
    out["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), out.get("PATH", "")])
    return out


def make_submissions(course: Course, dest: Path, n: int, folder: str = MODULE) -> None:
    """``n`` students: even ones hand in the solution, odd ones a partial solution."""
    module = next(m for m in course.modules() if m.folder == folder)
    release = nbformat.read(module.release_notebook, as_version=4)
    source = nbformat.read(module.source_notebook, as_version=4)
    texts = {kind: nbformat.writes(student_notebook(release, source, kind))
             for kind in ("complete", "partial")}
    for i in range(n):
        path = dest / f"s{i:03d}" / folder / module.notebook_name
        path.parent.mkdir(parents=True)
        path.write_text(texts["complete" if i % 2 == 0 else "partial"], encoding="utf-8")


def plain_autograde(course: Course, subs: Path,
                    root: Path) -> tuple[float, float, dict[str, str]]:
    """Seconds for one serial ``nbgrader autograde`` of every submission, seconds of the
    ``generate_assignment`` it needs first (``course grade`` does that inside its own time),
    and the scores by student."""
    module = next(m for m in course.modules() if m.folder == MODULE)
    (root / "source" / MODULE).mkdir(parents=True)
    shutil.copy(module.source_notebook, root / "source" / MODULE)
    shutil.copytree(subs, root / "submitted")
    (root / "nbgrader_config.py").write_text(
        f"load_subconfig({str(course.config_file)!r})  # noqa: F821\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        "c.CourseDirectory.source_directory = 'source'\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{root / 'gradebook.db'}'\n"
        "c.Autograde.autograde_preprocessors = [  # nbgrader 0.9.6's own list\n"
        "    'nbgrader.preprocessors.Execute', 'nbgrader.preprocessors.IgnorePattern',\n"
        "    'nbconvert.preprocessors.ClearMetadataPreprocessor',\n"
        "    'nbgrader.preprocessors.LimitOutput', 'nbgrader.preprocessors.SaveAutoGrades',\n"
        "    'nbgrader.preprocessors.AssignLatePenalties',\n"
        "    'nbgrader.preprocessors.CheckCellMetadata']\n",
        encoding="utf-8")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    start = time.perf_counter()
    subprocess.run([*nbgrader, "generate_assignment", MODULE, "--force"], cwd=root, env=env(),
                   check=True, capture_output=True)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    done = subprocess.run([*nbgrader, "autograde", MODULE, "--force"], cwd=root, env=env(),
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"nbgrader autograde in {root} failed:\n{done.stderr[-3000:]}")
    seconds = time.perf_counter() - start
    subprocess.run([*nbgrader, "export", "--to", str(root / "grades.csv")], cwd=root, env=env(),
                   check=True, capture_output=True)
    rows = csv.DictReader((root / "grades.csv").open())
    return seconds, setup, {r["student_id"]: f"{float(r['raw_score']):g}" for r in rows}


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


class CpuMeter:
    """CPU seconds of a command and everything it starts, kernels in sandboxes included.

    A process's CPU time reaches its parent only when the parent waits for it, and
    bubblewrap's outer process does not wait for the sandbox's own init, so
    ``RUSAGE_CHILDREN`` misses sandboxed kernels. A cgroup (v1 ``cpuacct``) counts every
    process in it, whatever becomes of it: the command joins one before it starts. Needs
    permission to make one (root); otherwise the CPU side is not measured.
    """

    def __init__(self) -> None:
        self.group = CPUACCT / f"grading-bench-{os.getpid()}"
        try:
            self.group.mkdir()
        except OSError:
            self.group = None  # type: ignore[assignment]

    @property
    def works(self) -> bool:
        return self.group is not None

    def join(self) -> None:
        """In the child, before exec: join the group."""
        if self.group is not None:
            (self.group / "cgroup.procs").write_text(str(os.getpid()))

    def seconds(self) -> float:
        if self.group is None:
            return float("nan")
        return int((self.group / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        if self.group is not None:
            try:
                self.group.rmdir()
            except OSError:
                pass


def course_grade(subs: Path, out: Path, feedback: bool, sandbox: bool = True,
                 meter: CpuMeter | None = None,
                 scheduler: str | None = None) -> tuple[float, float, dict[str, str], float]:
    """Wall seconds and CPU seconds (of the whole process tree) of ``course grade
    --workers 2`` (or ``--scheduler``: on that Dask cluster); scores by student; seconds to
    the first result."""
    cmd = [str(Path(sys.executable).parent / "course"), "grade", "--submissions", str(subs),
           "--out", str(out), "-m", MODULE,
           *(["--scheduler", scheduler] if scheduler else ["--workers", "2"])]
    if not feedback:
        cmd.append("--no-feedback")
    if not sandbox:
        cmd.append("--no-sandbox")
    if out.exists():
        shutil.rmtree(out)
    cpu = meter.seconds() if meter else float("nan")
    start = time.perf_counter()
    first = float("nan")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            preexec_fn=meter.join if meter else None)
    assert proc.stdout is not None
    output = []
    for line in proc.stdout:
        output.append(line)
        if first != first and line.startswith("grade [1/"):
            first = time.perf_counter() - start
    if proc.wait():
        raise SystemExit(f"{' '.join(cmd)} failed:\n{''.join(output)[-3000:]}")
    seconds = time.perf_counter() - start
    cpu = (meter.seconds() if meter else float("nan")) - cpu
    rows = csv.DictReader((out / "grades.csv").open())
    return seconds, cpu, {r["student"]: f"{float(r['score']):g}" for r in rows}, first


class LocalDask:
    """``dask scheduler`` and two ``dask worker --nthreads 1`` on 127.0.0.1, each process
    started here and stopped by its id."""

    def __init__(self, folder: Path, workers: int = 2) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        folder.mkdir(parents=True)
        dask = str(Path(sys.executable).parent / "dask")
        info = folder / "scheduler.json"
        start = time.perf_counter()
        self._start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(info)], folder)
        while not info.is_file():
            if self.procs[0].poll() is not None or time.perf_counter() - start > 60:
                self.stop()
                raise SystemExit("dask scheduler did not start")
            time.sleep(0.2)
        time.sleep(0.2)
        import json

        self.address = json.loads(info.read_text())["address"]
        for i in range(workers):
            here = folder / f"worker{i + 1}"
            here.mkdir()
            self._start([dask, "worker", self.address, "--nthreads", "1", "--no-nanny",
                         "--no-dashboard", "--local-directory", str(here)], here)
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)
        self.seconds = time.perf_counter() - start

    def _start(self, cmd: list[str], cwd: Path) -> None:
        self.procs.append(subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def dask_against_local(subs: Path, tmpdir: Path, n: int, runs: int) -> list[str]:
    """``course grade`` on a Dask cluster of this machine against ``--workers 2``, in
    turns; the lines to print (numbers and PASS/FAIL)."""
    cluster = LocalDask(tmpdir / "dask")
    try:
        local, dask = [], []
        for _ in range(runs):
            local.append(course_grade(subs, tmpdir / "local", False))
            dask.append(course_grade(subs, tmpdir / "on-dask", False,
                                     scheduler=cluster.address))
    finally:
        cluster.stop()
    same = all(r[2] == local[0][2] for r in local + dask)

    def steady(run: tuple[float, float, dict[str, str], float]) -> float:
        """Submissions after the first, per second after the first result."""
        return (n - 1) / (run[0] - run[3])

    best_local, best_dask = max(local, key=steady), max(dask, key=steady)
    ratio = steady(best_dask) / steady(best_local)
    overall = min(r[0] for r in local) / min(r[0] for r in dask)
    lines = [f"Dask cluster of this machine (2 workers of one thread; started in "
             f"{cluster.seconds:.1f} s, not counted), against --workers 2, {runs} run(s) "
             "each in turns:"]
    for name, rows in (("local --workers 2", local), ("dask --scheduler ", dask)):
        for r in rows:
            per = r[0] * 2 / n
            lines.append(f"  {name}: {r[0]:6.1f} s in all, first result after {r[3]:5.1f} s, "
                         f"{steady(r):.3f} submissions/s after it; fixed start-up "
                         f"{r[3] - per:5.1f} s (first result less {per:.2f} worker-s per "
                         "submission)")
    lines.append(f"  same scores: {same}; whole runs (fastest of each) local / dask: "
                 f"{overall:.2f}x")
    lines.append(f"throughput dask / local once grading runs: {ratio:.2f}x "
                 f"(goal >= {DASK_GOAL}): {'PASS' if ratio >= DASK_GOAL else 'FAIL'}")
    return lines


def bare(course: Course, runs: int) -> float:
    """Median seconds to execute the solution notebook with nbclient in a fresh process."""
    module = next(m for m in course.modules() if m.folder == MODULE)
    code = ("import nbformat, nbclient, sys\n"
            "nb = nbformat.read(sys.argv[1], as_version=4)\n"
            "nbclient.NotebookClient(nb, timeout=600, kernel_name='python3').execute()\n")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, str(module.source_notebook)], cwd=REPO,
                       env=env(), check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def capacity(course: Course, tmpdir: Path, n: int) -> list[str]:
    """Per module, the worker time of one submission with feedback (``n`` submissions,
    half solutions, half partial, ``course grade --workers 2``; the time after the first
    result, x 2 workers / the submissions after the first), and from their sum the time a
    class takes on 1, 4 and 16 machines like this one (2 cores: 2 grading processes)."""
    lines = [f"worker seconds per submission, with feedback ({n} per module, --workers 2):"]
    total = 0.0
    for module in course.modules():
        subs = tmpdir / f"subs-{module.folder}"
        make_submissions(course, subs, n, module.folder)
        cmd = [str(Path(sys.executable).parent / "course"), "grade", "--submissions",
               str(subs), "--out", str(tmpdir / f"out-{module.folder}"), "-m", module.folder,
               "--workers", "2"]
        start = time.perf_counter()
        first = float("nan")
        proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if first != first and line.startswith("grade [1/"):
                first = time.perf_counter() - start
        if proc.wait():
            raise SystemExit(f"{' '.join(cmd)} failed")
        each = (time.perf_counter() - start - first) * 2 / (n - 1)
        total += each
        lines.append(f"  {module.folder:16s} {each:5.2f} s")
    lines.append(f"  one student's 8 modules: {total:.1f} worker-s")
    lines.append("hours for a class (students x 8 modules; machines of 2 cores, 2 grading "
                 "processes each; start-up not counted):")
    lines.append("  students | 1 machine | 4 machines | 16 machines")
    for students in (500, 2000, 10000):
        hours = [students * total / (2 * machines) / 3600 for machines in (1, 4, 16)]
        lines.append(f"  {students:8d} | " + " | ".join(f"{h:8.2f} h" for h in hours))
    return lines


def main() -> int:
    """Run the benchmark; print the numbers and PASS/FAIL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--bare-runs", type=int, default=4)
    parser.add_argument("--sandbox-runs", type=int, default=2)
    parser.add_argument("--dask-runs", type=int, default=2)
    parser.add_argument("--only", choices=["dask", "capacity"],
                        help="only this part: the Dask comparison, or the time per "
                        "submission of every module and what a class takes")
    parser.add_argument("--per-module", type=int, default=10,
                        help="submissions per module for --only capacity")
    args = parser.parse_args()
    course = Course(REPO)
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        tmpdir = Path(tmp)
        subs = tmpdir / "subs"
        make_submissions(course, subs, args.students)
        if args.only == "capacity":
            print("\n".join(capacity(course, tmpdir, args.per_module)))
            return 0
        if args.only == "dask":
            print("\n".join(dask_against_local(subs, tmpdir, args.students, args.dask_runs)))
            return 0
        t_bare = bare(course, args.bare_runs)
        t_plain, t_setup, plain_scores = plain_autograde(course, subs, tmpdir / "plain")
        boxed, open_ = [], []
        meter = CpuMeter()
        try:
            for _ in range(args.sandbox_runs):  # in turns: load from elsewhere falls on both
                boxed.append(course_grade(subs, tmpdir / "course", False, meter=meter))
                open_.append(course_grade(subs, tmpdir / "open", False, sandbox=False,
                                          meter=meter))
        finally:
            meter.close()
        t_course, cpu_course, course_scores, _ = min(boxed)
        t_open, cpu_open, open_scores, _ = min(open_)
        cpu_course, cpu_open = min(b[1] for b in boxed), min(o[1] for o in open_)
        t_fb, _, fb_scores, _ = course_grade(subs, tmpdir / "course-fb", feedback=True)
        dask_lines = dask_against_local(subs, tmpdir, args.students, args.dask_runs)
    n = args.students
    same = plain_scores == course_scores == fb_scores == open_scores
    speedup = t_plain / t_course
    per_sub = t_course * 2 / n
    overhead = per_sub / t_bare
    print(f"submissions: {n} of {MODULE} (half solutions, half partial); cores: "
          f"{os.cpu_count()}")
    print(f"plain serial nbgrader autograde : {t_plain:7.1f} s  ({t_plain / n:.2f} s each)")
    print(f"course grade --workers 2        : {t_course:7.1f} s  ({t_course / n:.2f} s each, "
          f"{per_sub:.2f} worker-s each)")
    print(f"  the same with feedback HTML   : {t_fb:7.1f} s  (for information)")
    print(f"  the same with --no-sandbox    : {t_open:7.1f} s  (fastest of {args.sandbox_runs}; "
          f"sandboxed: fastest of {args.sandbox_runs})")
    print(f"CPU seconds per submission (all processes): sandboxed {cpu_course / n:.3f}, "
          f"unsandboxed {cpu_open / n:.3f}")
    print(f"bare nbclient run of the notebook: {t_bare:7.2f} s  (median of {args.bare_runs})")
    print(f"same scores in all three gradings: {same}")
    print(f"(plain's generate_assignment, not in its time above: {t_setup:.1f} s; "
          f"speed-up with it counted, as course grade's own set-up is: "
          f"{(t_plain + t_setup) / t_course:.2f}x, for information)")
    print(f"speed-up plain / course: {speedup:.2f}x (goal >= {SPEEDUP_GOAL}): "
          f"{'PASS' if speedup >= SPEEDUP_GOAL else 'FAIL'}")
    print(f"per submission course / bare: {overhead:.2f}x (goal <= {OVERHEAD_GOAL}): "
          f"{'PASS' if overhead <= OVERHEAD_GOAL else 'FAIL'}")
    cpu_ratio, wall_ratio = cpu_course / cpu_open, t_course / t_open
    judged = wall_ratio if cpu_ratio != cpu_ratio else max(cpu_ratio, wall_ratio)  # NaN: no CPU
    print(f"sandbox cost per submission: CPU {cpu_ratio:.3f}x "
          f"({(cpu_course - cpu_open) / n * 1000:+.0f} ms), wall {wall_ratio:.3f}x "
          f"({(t_course - t_open) * 2 / n * 1000:+.0f} worker-ms) (goal <= {SANDBOX_GOAL}): "
          f"{'PASS' if judged <= SANDBOX_GOAL else 'FAIL'}")
    if not same:
        diff = {s: (plain_scores.get(s), course_scores.get(s)) for s in plain_scores
                if plain_scores.get(s) != course_scores.get(s)}
        print(f"score differences (plain, course): {diff}")
    print("\n".join(dask_lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
