"""``stgnn serve --workers 2``: two processes on one port over one store.

Every request below opens a new connection, so the kernel may hand it to either worker; each test
first checks that both workers did answer some of them, so what follows is a cross-process check.
One server serves all the tests of this module (starting one loads the run twice).
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from serve_helpers import ServerProcess

from stgnn.serve.store import CheckinStore

TOKEN = "wk"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 2_000_000_000           # after every synthetic check-in


@pytest.fixture(scope="module")
def two_workers(serve_runs, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workers")
    server = ServerProcess(serve_runs["STGNN"], tmp / "store.sqlite", tmp / "server.log", token=TOKEN, workers=2)
    try:
        yield server, tmp / "store.sqlite"
    finally:
        server.stop()


def _pids_answering(server: ServerProcess, n: int = 60) -> set[int]:
    """The worker pids that answered ``n`` ``/healthz`` requests, each on a new connection."""
    seen: set[int] = set()
    for _ in range(n):
        status, h = server.get("/healthz")
        assert status == 200
        seen.add(h["pid"])
        if len(seen) == 2:
            break
    return seen


def test_both_workers_answer_on_one_port(two_workers):
    server, _ = two_workers
    pids = server.worker_pids()
    assert len(pids) == 2 and server.proc.pid not in pids
    assert _pids_answering(server) == set(pids)


def test_a_write_is_in_the_next_answer_of_any_worker(two_workers, serve_runs):
    server, _ = two_workers
    split = serve_runs["split"]
    user, pois = str(split.user_ids[3]), [str(p) for p in split.poi_ids[:40]]
    assert len(_pids_answering(server)) == 2
    for i in range(20):
        ts, poi = T0 + 60 * i, pois[(7 * i) % len(pois)]
        status, out = server.request("POST", "/checkins", {"id": f"rw-{i}", "user": user, "poi": poi, "time": ts},
                                     AUTH)
        assert status == 201 and out["status"] == "created"
        for _ in range(3):          # new connections: each may be the other worker
            status, rec = server.get(f"/recommend?user={user}&k=3&at={ts + 1}&explain=false")
            assert status == 200
            assert rec["context"]["current_poi"] == poi and rec["context"]["trajectory"][-1]["ts"] == ts
            status, hist = server.get(f"/users/{user}/checkins?limit=1")
            assert status == 200 and hist["checkins"][0]["id"] == f"rw-{i}"


def test_a_poi_registered_through_one_worker_is_known_to_every_worker(two_workers):
    server, _ = two_workers
    for _ in range(10):          # both workers build and keep their POI map answer first
        assert server.get("/map/pois")[0] == 200
    body = {"id": "reg-1", "user": "wk-user", "poi": "wk-new-poi", "time": T0,
            "poi_info": {"category": "Tea House", "lat": 40.7, "lon": -74.0}}
    assert server.request("POST", "/checkins", body, AUTH)[0] == 201
    for i in range(10):
        status, m = server.get("/map/pois")
        assert status == 200 and "wk-new-poi" in m["poi"]
        # a check-in without poi_info at the new POI is accepted by whichever worker gets it
        status, out = server.request("POST", "/checkins", {"id": f"reg-next-{i}", "user": "wk-user",
                                                           "poi": "wk-new-poi", "time": T0 + 60 * (i + 1)}, AUTH)
        assert status == 201, out
        status, rec = server.get(f"/recommend?user=wk-user&k=3&at={T0 + 60 * (i + 1) + 1}")
        assert status == 200


def test_the_same_id_posted_to_both_workers_is_stored_once(two_workers, serve_runs):
    server, store = two_workers
    split = serve_runs["split"]
    user, poi = str(split.user_ids[5]), str(split.poi_ids[2])
    ids = [f"dup-{j}" for j in range(8)]
    statuses: list[tuple[str, int]] = []
    lock = threading.Lock()

    def post(cid: str, j: int) -> None:
        status, _ = server.request("POST", "/checkins", {"id": cid, "user": user, "poi": poi,
                                                         "time": T0 + 7 * j}, AUTH)
        with lock:
            statuses.append((cid, status))

    # 6 clients at once per id, each on its own connection: the two workers race to write it
    threads = [threading.Thread(target=post, args=(cid, j)) for j, cid in enumerate(ids) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(statuses) == 6 * len(ids)
    for cid in ids:
        got = sorted(s for c, s in statuses if c == cid)
        assert got == [200] * 5 + [201], (cid, got)       # one created, five duplicates
    with CheckinStore(store) as s:
        rows = s._conn().execute(f"SELECT id, COUNT(*) FROM checkins WHERE id IN ({','.join('?' * len(ids))}) "
                                 "GROUP BY id", ids).fetchall()
        assert sorted(rows) == sorted((cid, 1) for cid in ids)
        assert s.integrity_check() == "ok"


def _reloads_of_each_worker(server: ServerProcess, pids: list[int], at_least: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    done: set[int] = set()
    while done != set(pids):
        assert time.monotonic() < deadline, f"workers {set(pids) - done} did not reload within {timeout_s} s"
        status, h = server.get("/healthz")
        assert status == 200
        if h["reloads"] >= at_least:
            done.add(h["pid"])
        time.sleep(0.05)


def test_admin_reload_and_sighup_reload_every_worker(two_workers):
    server, _ = two_workers
    pids = server.worker_pids()
    status, out = server.request("POST", "/admin/reload", None, AUTH, timeout=120)
    assert status == 200 and out["current"]["model"] == "STGNN"
    _reloads_of_each_worker(server, pids, 1)
    server.proc.send_signal(signal.SIGHUP)       # to the supervisor only
    _reloads_of_each_worker(server, pids, 2)
    assert server.worker_pids() == pids          # reloaded in place, not restarted


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_stop_ends_every_worker(serve_runs, tmp_path, how):
    """SIGTERM to the server, or SIGINT to its whole process group as a terminal's Ctrl-C sends it
    (every worker then also has its own SIGINT): all exit, the server with 0."""
    server = ServerProcess(serve_runs["UserHistory"], tmp_path / "s.sqlite", tmp_path / "server.log", workers=2)
    pids = server.worker_pids()
    if how == "ctrl-c":
        os.killpg(server.proc.pid, signal.SIGINT)
        server.proc.wait(60)
    server.stop()
    assert server.proc.returncode == 0, server.log.read_text()[-2000:]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
