"""A short bounded load run against a real server (the 60 s, 200 req/s run is benchmarks/serve.py),
then a SIGHUP reload of the same server."""
from __future__ import annotations

import signal
import time

import pytest
from serve_helpers import ServerProcess

from stgnn.serve.loadgen import run_load
from stgnn.serve.store import CheckinStore


def test_short_mixed_load_has_no_errors_and_every_write_lands(serve_runs, tmp_path):
    split = serve_runs["split"]
    store = tmp_path / "load.sqlite"
    server = ServerProcess(serve_runs["STGNN"], store, tmp_path / "server.log", token="lt")
    try:
        users = [str(u) for u in split.user_ids] + ["cold-a", "cold-b"]
        res = run_load(server.url, users, [str(p) for p in split.poi_ids], rate=40, duration_s=5,
                       write_fraction=0.2, max_requests=200, connections=4, token="lt", id_prefix="short")
        # SIGHUP reloads the served run in the background; the server keeps answering meanwhile
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while server.get("/healthz")[1]["reloads"] < 1:
            assert time.monotonic() < deadline, "SIGHUP did not reload within 120 s"
            assert server.get(f"/recommend?user={users[0]}&k=3")[0] == 200
            time.sleep(0.2)
    finally:
        server.stop()
    assert res["scheduled"] == 200 and res["completed"] == 200 and res["unanswered"] == 0
    assert res["errors"] == 0, res["error_samples"]
    n_writes = res["statuses"].get("201", 0)
    assert 0 < n_writes < 200 and res["statuses"].get("200", 0) + n_writes == 200
    assert res["latency_ms"]["recommend"]["p50"] > 0
    with CheckinStore(store) as s:
        assert s.integrity_check() == "ok"
        assert s.count() == split.num_checkins + n_writes


def test_load_generator_is_loopback_only_and_bounded():
    with pytest.raises(ValueError, match="loopback"):
        run_load("http://example.org:80", ["u"], ["p"], rate=1, duration_s=1)
    # nothing listens on port 9 (discard): every request fails fast, the run still ends on time
    res = run_load("http://127.0.0.1:9", ["u"], ["p"], rate=20, duration_s=1, max_requests=5, connections=2,
                   timeout_s=1, grace_s=2)
    assert res["scheduled"] == 5 and res["ok"] == 0 and res["errors"] == 5 and res["elapsed_s"] < 10
