"""The grading service under a deadline rush: ``course serve`` against ``course grade``.

Simulated students (asyncio clients, as many as students, all at once) submit module 01 and
module 08 notebooks (half complete, half partial, as ``course examples`` writes them) to a
warm ``course serve --workers N`` on this machine (a SQLite gradebook in a scratch grading
root, the course's own settings). Each client does what the Submit cell does: it posts
its notebook, waits as long as the service's Retry-After says when the queue is full, and
asks for its result until it is graded. Then:

* **latency**: p50 and p95 of the time from a client's first post to its score;
* **throughput**: submissions per second once grading runs (after the first result, to the
  last), against ``course grade --workers N`` (feedback pages on, as the service makes
  them) on the same notebooks, measured the same way from its progress lines; with each
  one's start-up counted too, for information. Goal: service / course grade >= 0.9;
* **one submission on an idle, warm service** (the median of three), against the bare
  execution of the same notebook's code cells as a script in a fresh Python process.
  Goal: service <= 1.5 x bare + 0.5 s;
* **capacity**: from the measured worker time of one submission (wall time after the first
  result x N / submissions), how many students a minute a machine grades, per module, with
  one grading process per core (grading is one process per submission, so it scales with
  the cores while memory lasts: about 2 GiB a kernel at most, by the grader's limit).

Run: .venv/bin/python bench/service_bench.py [--students 20] [--workers 2] [--idle-runs 3]
Always exits 0; prints the numbers and PASS or FAIL against the goals.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from coursekit.authoring.examples import student_notebook  # noqa: E402
from coursekit.course import Course  # noqa: E402

MODULES = ("01_tensor", "08_training")
THROUGHPUT_GOAL = 0.9
IDLE_FACTOR, IDLE_EXTRA = 1.5, 0.5
BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
MACHINES = (2, 8, 32)  # cores


def env() -> dict[str, str]:
    out = dict(os.environ, **BLAS)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), out.get("PYTHONPATH")]))
    out["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), out.get("PATH", "")])
    return out


def notebooks(course: Course) -> dict[tuple[str, str], str]:
    """(module, kind) -> the notebook a student of that kind hands in."""
    out = {}
    for folder in MODULES:
        (module,) = course.select([folder])
        release = nbformat.read(module.release_notebook, as_version=4)
        source = nbformat.read(module.source_notebook, as_version=4)
        for kind in ("complete", "partial"):
            out[(folder, kind)] = nbformat.writes(student_notebook(release, source, kind))
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def course(*args: str) -> list[str]:
    return [sys.executable, "-m", "coursekit", "--root", str(REPO), *args]


def tokens(grading: Path, students: list[str]) -> dict[str, str]:
    args = [a for s in students for a in ("--student", s)]
    done = subprocess.run(course("tokens", "--grading", str(grading), *args), env=env(),
                          capture_output=True, text=True, check=True, timeout=300)
    return {r["student"]: r["token"] for r in csv.DictReader(io.StringIO(done.stdout))}


class Service:
    """``course serve`` in a process of its own, stopped by its id."""

    def __init__(self, grading: Path, workers: int, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        out = open(log, "w", encoding="utf-8")  # noqa: SIM115 - the process keeps it
        self.proc = subprocess.Popen(course("serve", "--grading", str(grading), "--workers",
                                            str(workers), "--port", str(self.port)),
                                     env=env(), stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()

    def wait(self, timeout: float = 300) -> float:
        import httpx

        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"course serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.base + "/api", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"course serve did not answer within {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


async def student(client: Any, base: str, token: str, module: str, notebook: str
                  ) -> dict[str, Any]:
    """What one Submit cell does: post (waiting as the service asks while it is busy),
    then ask until graded; the times and the score."""
    headers = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    refused = 0
    while True:
        reply = await client.post(f"{base}/api/submissions", params={"module": module},
                                  content=notebook.encode(), headers=headers)
        if reply.status_code != 503:
            break
        refused += 1
        await asyncio.sleep(float(reply.headers.get("retry-after", "5")))
    if reply.status_code not in (200, 202):
        raise SystemExit(f"{module}: {reply.status_code} {reply.text}")
    data = reply.json()
    while data["state"] not in ("done", "failed"):
        reply = await client.get(f"{base}/api/attempts/{data['attempt']}",
                                 params={"wait": 30}, headers=headers)
        data = reply.json()
    return {"module": module, "start": started, "end": time.monotonic(),
            "score": data.get("score"), "state": data["state"], "refused": refused}


async def burst(base: str, jobs: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    import httpx

    limits = httpx.Limits(max_connections=len(jobs) + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        return await asyncio.gather(*(student(client, base, t, m, nb) for t, m, nb in jobs))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def steady(times: list[float]) -> float:
    """Submissions per second after the first result, to the last."""
    times = sorted(times)
    return (len(times) - 1) / (times[-1] - times[0]) if times[-1] > times[0] else float("nan")


def course_grade(subs: Path, out: Path, workers: int) -> tuple[float, list[float], dict]:
    """``course grade --workers N`` in this process: wall time, when each result came,
    the scores."""
    from coursekit.grading.grade import grade

    arrived: list[float] = []

    def log(line: str) -> None:
        if line.startswith("grade ["):
            arrived.append(time.monotonic())

    old = {k: os.environ.get(k) for k in BLAS}
    os.environ.update(BLAS)
    started = time.monotonic()
    try:
        results = grade(Course(REPO), subs, out=out, workers=workers,
                        modules=[m[:2] for m in MODULES], log=log)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    scores = {(r.student, r.assignment): r.score for r in results if r.status == "graded"}
    return time.monotonic() - started, arrived, scores


def bare(notebook: str, runs: int, scratch: Path) -> float:
    """Median seconds to run a notebook's code cells, one after another as a notebook runs
    them (each compiled on its own), in a fresh Python process."""
    nb = nbformat.reads(notebook, as_version=4)
    cells = ["\n".join(line for line in cell.source.splitlines()
                       if not line.lstrip().startswith(("%", "!")))
             for cell in nb.cells if cell.cell_type == "code"]
    (scratch / "cells.json").write_text(json.dumps(cells), encoding="utf-8")
    # codeop keeps a cell's __future__ imports for the cells after it, as IPython does
    runner = ("import codeop, json, sys\nspace = {'__name__': '__main__'}\n"
              "compiler = codeop.Compile()\n"
              "for i, src in enumerate(json.load(open(sys.argv[1]))):\n"
              "    exec(compiler(src, f'<cell {i}>', 'exec'), space)\n")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", runner, str(scratch / "cells.json")],
                       cwd=scratch, env=dict(env(), MPLBACKEND="Agg"), check=True,
                       capture_output=True, timeout=600)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def worker_seconds(log: str, students: list[str]) -> dict[str, list[float]]:
    """Per module, the seconds each rush submission took to grade (the service's log line
    for it: "graded in S s")."""
    import re

    out: dict[str, list[float]] = {m: [] for m in MODULES}
    wanted = set(students)
    for student, module, seconds in re.findall(
            r"serve: #\d+ (\S+) (\S+): .* \(graded in ([\d.]+) s", log):
        if student in wanted and module in out:
            out[module].append(float(seconds))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--idle-runs", type=int, default=3)
    args = parser.parse_args()
    course_obj = Course(REPO)
    books = notebooks(course_obj)
    names = [f"s{i:03d}" for i in range(args.students)]
    idle_names = [f"idle{i}" for i in range(args.idle_runs * len(MODULES))]
    warm_names = [f"warm{m[:2]}" for m in MODULES]
    with tempfile.TemporaryDirectory(prefix="service-bench-") as tmp:
        scratch = Path(tmp)
        grading = scratch / "grading"
        print(f"service bench: {args.students} students x modules {', '.join(MODULES)} "
              f"(half complete, half partial), --workers {args.workers}")
        keys = tokens(grading, names + idle_names + warm_names)
        service = Service(grading, args.workers, scratch / "serve.log")
        try:
            started = service.wait()
            print(f"course serve answered after {started:.1f} s (grading processes started)")
            warm = [(keys[w], m, books[(m, "complete")]) for w, m in zip(warm_names, MODULES,
                                                                          strict=True)]
            asyncio.run(burst(service.base, warm))  # every module's sandbox made once
            jobs = [(keys[s], m, books[(m, "complete" if i % 2 == 0 else "partial")])
                    for i, s in enumerate(names) for m in MODULES]
            t0 = time.monotonic()
            done = asyncio.run(burst(service.base, jobs))
            wall = time.monotonic() - t0
            idle: dict[str, list[float]] = {m: [] for m in MODULES}
            for i in range(args.idle_runs):
                for j, module in enumerate(MODULES):
                    name = idle_names[i * len(MODULES) + j]
                    (one,) = asyncio.run(burst(service.base, [
                        (keys[name], module, books[(module, "complete")])]))
                    idle[module].append(one["end"] - one["start"])
        finally:
            service.stop()
        served = service.log.read_text(encoding="utf-8")
        graded_in = worker_seconds(served, names)
        idle_graded = worker_seconds(served, idle_names)
        subs = scratch / "subs"
        for i, s in enumerate(names):
            for m in MODULES:
                (module,) = course_obj.select([m])
                path = subs / s / m / module.notebook_name
                path.parent.mkdir(parents=True)
                path.write_text(books[(m, "complete" if i % 2 == 0 else "partial")],
                                encoding="utf-8")
        t_grade, arrived, scores = course_grade(subs, scratch / "batch", args.workers)
        bares = {m: bare(books[(m, "complete")], 3, scratch) for m in MODULES}

    latencies = [d["end"] - d["start"] for d in done]
    failed = [d for d in done if d["state"] != "done"]
    refused = sum(d["refused"] for d in done)
    service_rate = steady([d["end"] for d in done])
    grade_rate = steady(arrived)
    n = len(done)
    print(f"\n{n} submissions graded by the service in {wall:.1f} s ({len(failed)} failed, "
          f"{refused} refusals while the queue was full)")
    print(f"submit to score: p50 {quantile(latencies, 0.5):.1f} s, p95 "
          f"{quantile(latencies, 0.95):.1f} s")
    for module in MODULES:
        mine = [d["end"] - d["start"] for d in done if d["module"] == module]
        print(f"  {module}: p50 {quantile(mine, 0.5):.1f} s, p95 {quantile(mine, 0.95):.1f} s")
    same = all(scores.get((s, m)) is not None for s in names for m in MODULES)
    print(f"course grade --workers {args.workers} on the same {n} notebooks: {t_grade:.1f} s "
          f"(start-up included); every one graded: {same}")
    ratio = service_rate / grade_rate
    print(f"throughput after the first result: service {service_rate:.3f}/s, course grade "
          f"{grade_rate:.3f}/s: {ratio:.2f}x (goal >= {THROUGHPUT_GOAL}): "
          f"{'PASS' if ratio >= THROUGHPUT_GOAL else 'FAIL'}")
    print(f"  with start-up counted (the service's was paid before the rush): service "
          f"{n / wall:.3f}/s, course grade {n / t_grade:.3f}/s")
    for module in MODULES:
        one = statistics.median(idle[module]) if idle[module] else float("nan")
        goal = IDLE_FACTOR * bares[module] + IDLE_EXTRA
        inner = statistics.median(idle_graded[module]) if idle_graded[module] else float("nan")
        print(f"one {module} submission on an idle, warm service: {one:.2f} s (of which the "
              f"grading session's grade() {inner:.2f} s, the service's own work the rest); its "
              f"code cells bare in a fresh Python: {bares[module]:.2f} s; goal <= {goal:.2f} s:"
              f" {'PASS' if one <= goal else 'FAIL'}")
    print("\ncapacity, students a minute (one submission each; one grading process per core; "
          "worker time of one submission in the rush, median):")
    print("| module | seconds per submission | " + " | ".join(
        f"{c} cores" for c in MACHINES) + " |")
    print("|---|---|" + "---|" * len(MACHINES))
    for module in MODULES:
        sec = statistics.median(graded_in[module]) if graded_in[module] else float("nan")
        print(f"| {module} | {sec:.1f} | " + " | ".join(f"{60 * c / sec:.0f}" for c in MACHINES)
              + " |")
    ones = {m: statistics.median(idle[m]) if idle[m] else float("nan") for m in MODULES}
    print(json.dumps({"p50": quantile(latencies, 0.5), "p95": quantile(latencies, 0.95),
                      "throughput_ratio": ratio, "idle": ones, "bare": bares}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
