"""The grading service on a Dask cluster (``course serve --scheduler``): the real ``dask
scheduler`` and ``dask worker`` on 127.0.0.1 (each worker isolated as a machine of its
own, see tests/11_grading/daskcluster.py), the gradebook on PostgreSQL. Submissions are
graded there as locally, and a worse one after a better one leaves the better one in the
gradebook (``counts = "best"``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import servicetools as st

from coursekit import nbg
from coursekit.grading.records.database import normalize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "11_grading"))
from daskcluster import DaskCluster  # noqa: E402

pytestmark = pytest.mark.slow


def test_graded_on_a_dask_cluster(pg: Any, tmp_path: Path,
                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    course = st.make_course(tmp_path / "course", """
[student_repository]
slug = "your-org/tinytorch"
through = "01"

[service]
counts = "best"
""")
    db_url = pg.create_database("dask_gradebook")
    grading = tmp_path / "grading"
    students = ["d1", "d2", "d3"]
    tokens = st.issue_tokens(course, grading, db_url, students)
    most = st.points(course, "01_tensor")
    full, blank = st.solved(course, "01_tensor"), st.untouched(course, "01_tensor")
    with DaskCluster(tmp_path / "cluster", hide=[st.REPO, tmp_path_factory.getbasetemp()]) \
            as cluster:
        cluster.start_scheduler()
        cluster.start_worker("w1")
        cluster.wait_for_workers(1)
        service = st.ServiceProcess(course, grading, db_url, tmp_path / "serve.log",
                                    scheduler=cluster.address)
        try:
            service.start()
            sent = {s: service.submit(tokens[s], "01_tensor", nb) for s, nb in
                    (("d1", full), ("d2", blank), ("d3", full))}
            assert all(r.status == 202 for r in sent.values()), sent
            results = {s: service.result(tokens[s], r.json["attempt"]) for s, r in sent.items()}
            worse = service.submit(tokens["d1"], "01_tensor", blank)
            assert worse.status == 202
            after = service.result(tokens["d1"], worse.json["attempt"])
            status = service.call("GET", "/api/attempts", token=tokens["d1"]).json
        finally:
            service.stop()
    assert [results[s]["score"] for s in students] == [most, 0.0, most]
    assert after["score"] == 0.0 and not after["counts"]
    assert [a["counts"] for a in status["attempts"]] == [True, False]
    log = service.log.read_text()
    assert "Dask scheduler" in log and "graded again into the gradebook" in log
    with nbg.gradebook(normalize(db_url), "tinytorch") as gb:
        assert float(gb.find_submission("01_tensor", "d1").score) == most  # the best counts
