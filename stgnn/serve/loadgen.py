"""A bounded open-loop load generator for the HTTP API, for loopback tests and benchmarks only.

Requests are scheduled at a fixed rate (request ``i`` at ``start + i / rate``) whatever the server
does, so a slow answer cannot hide the requests it delays (no coordinated omission): latency is
measured from the scheduled time to the end of the answer (``latency``) and from the send
(``service``). A share of the requests are check-in writes (``POST /checkins`` with fresh ids),
the rest ``GET /recommend``. Bounded in every direction: at most ``rate * duration_s`` requests
(and ``max_requests``), nothing scheduled after ``duration_s``, the run ends ``grace_s`` after
that whatever is still in flight, and only loopback hosts are accepted.
"""
from __future__ import annotations

import http.client
import json
import queue
import random
import threading
import time
from typing import Any, Sequence
from urllib.parse import quote, urlsplit

import numpy as np

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _percentiles(ms: list[float]) -> dict[str, float | None]:
    if not ms:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()), "mean": float(a.mean())}


def run_load(base_url: str, users: Sequence[str], pois: Sequence[str], rate: float = 200.0,
             duration_s: float = 60.0, write_fraction: float = 0.2, max_requests: int | None = None,
             connections: int = 8, timeout_s: float = 5.0, grace_s: float = 10.0, token: str | None = None,
             seed: int = 0, id_prefix: str = "load", k: int = 10) -> dict[str, Any]:
    """Hold ``rate`` requests/s against ``base_url`` for ``duration_s`` (module docstring).

    Args:
        base_url: ``http://127.0.0.1:<port>`` (loopback only).
        users, pois: raw ids to draw requests from (uniformly, seeded).
        write_fraction: share of requests that are check-in writes.
        connections: persistent keep-alive connections (one worker thread each).
        token: bearer token for writes.

    Returns:
        counts (sent, ok, errors by status), achieved rate, latency percentiles (ms) overall and per
        kind, and the first few error bodies.
    """
    u = urlsplit(base_url)
    if u.hostname not in LOOPBACK:
        raise ValueError(f"run_load only targets loopback hosts {LOOPBACK}, got {u.hostname!r}")
    if not users or not pois:
        raise ValueError("run_load needs at least one user and one POI")
    total = int(rate * duration_s)
    if max_requests is not None:
        total = min(total, int(max_requests))
    rng = random.Random(seed)
    plan = [("write" if rng.random() < write_fraction else "read", rng.choice(list(users)), rng.choice(list(pois)))
            for _ in range(total)]
    work: queue.Queue = queue.Queue()
    lock = threading.Lock()
    res: dict[str, list[float]] = {"read": [], "write": []}
    service: dict[str, list[float]] = {"read": [], "write": []}
    statuses: dict[str, int] = {}
    errors: list[str] = []
    stop = threading.Event()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"

    def worker() -> None:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout_s)
        while not stop.is_set():
            try:
                item = work.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                break
            i, due = item
            kind, user, poi = plan[i]
            sent = time.perf_counter()
            try:
                if kind == "read":
                    conn.request("GET", f"/recommend?user={quote(user)}&k={k}")
                else:
                    body = json.dumps({"id": f"{id_prefix}-{i}", "user": user, "poi": poi, "time": int(time.time())})
                    conn.request("POST", "/checkins", body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                status = str(r.status)
            except (OSError, http.client.HTTPException) as e:
                status, data = type(e).__name__, str(e).encode()
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout_s)
            done = time.perf_counter()
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                ok = status.isdigit() and 200 <= int(status) < 300
                if ok:
                    res[kind].append((done - due) * 1e3)
                    service[kind].append((done - sent) * 1e3)
                elif len(errors) < 10:
                    errors.append(f"{kind} {status}: {data[:200].decode(errors='replace')}")
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True, name=f"loadgen-{j}") for j in range(connections)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    deadline = start + duration_s
    for i in range(total):
        due = start + i / rate
        if due >= deadline:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        work.put((i, due))
    scheduled_until = time.perf_counter()
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join(timeout=max(0.0, deadline + grace_s - time.perf_counter()))
    stop.set()
    elapsed = time.perf_counter() - start
    done_n = sum(statuses.values())
    ok_n = len(res["read"]) + len(res["write"])
    return {"target_rate": rate, "duration_s": duration_s, "scheduled": total, "completed": done_n, "ok": ok_n,
            "errors": done_n - ok_n, "unanswered": total - done_n, "statuses": statuses,
            "achieved_rate": round(done_n / max(scheduled_until - start, 1e-9), 2), "elapsed_s": round(elapsed, 2),
            "latency_ms": {"all": _percentiles(res["read"] + res["write"]), "recommend": _percentiles(res["read"]),
                           "checkin": _percentiles(res["write"])},
            "service_ms": {"recommend": _percentiles(service["read"]), "checkin": _percentiles(service["write"])},
            "write_fraction": write_fraction, "connections": connections, "error_samples": errors}
