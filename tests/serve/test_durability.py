"""Durability: SIGKILL the server in the middle of a stream of writes; every check-in it
acknowledged is in the store after a restart, and the file passes PRAGMA integrity_check."""
from __future__ import annotations

import http.client
import threading
import time

import pytest
from serve_helpers import ServerProcess

from stgnn.serve.store import CheckinStore

WRITERS = 4
MAX_WRITES = 5_000        # bounds of the write stream: count and time
MAX_SECONDS = 90.0


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_during_acknowledged_writes_loses_nothing(serve_runs, tmp_path, workers):
    """With 2 workers the SIGKILL takes the supervisor and both workers, which were committing
    to the one file side by side."""
    split = serve_runs["split"]
    store = tmp_path / "store.sqlite"
    server = ServerProcess(serve_runs["STGNN"], store, tmp_path / "server.log", token="k", workers=workers)
    acked: list[str] = []
    lock, stop = threading.Lock(), threading.Event()
    t_end = time.monotonic() + MAX_SECONDS
    users, pois = [str(u) for u in split.user_ids[:10]], [str(p) for p in split.poi_ids[:50]]

    def writer(w: int) -> None:
        for i in range(MAX_WRITES // WRITERS):
            if stop.is_set() or time.monotonic() > t_end:
                return
            cid = f"dur-{w}-{i}"
            body = {"id": cid, "user": users[i % len(users)], "poi": pois[(i * 7 + w) % len(pois)],
                    "time": 2_000_000_000 + i, "tz_offset_min": -240}
            try:
                status, _ = server.request("POST", "/checkins", body, {"Authorization": "Bearer k"}, timeout=5)
            except (OSError, http.client.HTTPException):  # the server is gone: never acknowledged
                return
            if status == 201:
                with lock:
                    acked.append(cid)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    try:
        for t in threads:
            t.start()
        while len(acked) < 150 and time.monotonic() < t_end:
            time.sleep(0.01)
        server.kill()                     # mid-stream: the writers are still sending
        n_acked_at_kill = len(acked)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        if server.proc.poll() is None:
            server.stop()
    assert n_acked_at_kill >= 150, (n_acked_at_kill, server.log.read_text()[-2000:])

    with CheckinStore(store) as s:
        assert s.integrity_check() == "ok"
        assert s.has_ids(acked) == set(acked)
        assert s.count() >= split.num_checkins + len(acked)

    # a restarted server serves from the same store, the acknowledged writes included
    again = ServerProcess(serve_runs["STGNN"], store, tmp_path / "server2.log", token="k")
    try:
        status, h = again.get("/healthz")
        assert status == 200 and h["store"]["checkins"] >= split.num_checkins + len(acked)
        last = acked[-1]
        w, i = (int(x) for x in last.split("-")[1:])
        status, c = again.get(f"/users/{users[i % len(users)]}/checkins?limit=1000")
        assert status == 200 and last in {x["id"] for x in c["checkins"]}
    finally:
        again.stop()
