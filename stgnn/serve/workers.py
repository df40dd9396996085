"""``stgnn serve --workers N``: N server processes on one port, over one check-in store.

One request's Python work (HTTP parsing, FastAPI, JSON, the model's small tensor ops) holds the
GIL, so one process uses one core however many threads it has. Here a supervisor reserves the
port (bound, not listening) and starts N worker processes (``spawn``: none inherits a thread or a
torch state from the supervisor); each loads the run and listens on the same port with
``SO_REUSEPORT``, so the kernel hands each new connection to one worker by a hash of its
addresses. (One listening socket shared by all workers, uvicorn's ``--workers`` model, was
measured to give one worker 2.7 times the other's CPU time, most likely because the first worker to wake accepts
every pending connection at once, and keep-alive connections stay where they were accepted.)

What is shared is the SQLite store (WAL): every request reads it afresh, writes from all workers
are serialised by SQLite's file lock, each acknowledged only after its fsync'd commit, and the
unique check-in id makes a retried write idempotent whichever worker gets it
(:mod:`stgnn.serve.store`). A check-in acknowledged by one worker is therefore in the next
recommendation of any worker.

Control: each worker has a pipe to the supervisor. ``SIGHUP`` to the supervisor reloads the run
in every worker; ``POST /admin/reload`` reloads the worker that answers it and, through the
supervisor, every other worker (each keeps serving its old model until its new one is loaded).
``SIGTERM``/``SIGINT`` to the supervisor stops every worker gracefully through its pipe
(requests in flight finish), then the supervisor exits. A worker that dies is restarted; one that dies before it
ever served (e.g. a broken run) stops the whole server with an error. A worker whose supervisor
is gone (its pipe closed, e.g. after ``kill -9``) shuts itself down.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger("stgnn.serve")

STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs to build its server (picklable: it crosses ``spawn``)."""

    run_dir: str
    store: str
    host: str
    port: int
    threads: int = 1
    log_level: str = "warning"


def _socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {e.strerror}; choose another --port") from None
    return sock


def reserve_port(host: str, port: int) -> socket.socket:
    """The supervisor's hold on ``host:port``: bound with ``SO_REUSEPORT`` but not listening, so it
    receives no connection, fails early when the port is taken, and keeps other programs (which
    would need ``SO_REUSEPORT`` too) off the port while workers restart. Raises ``ValueError``."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("--workers needs SO_REUSEPORT (Linux, BSD, macOS); serve with --workers 1")
    return _socket(host, port)


def _listen(host: str, port: int) -> socket.socket:
    """A worker's own listening socket on the shared port."""
    sock = _socket(host, port)
    sock.listen(2048)
    return sock


def _worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """A worker process: load the run, listen on the shared port, serve until told to stop."""
    import gc

    import torch
    import uvicorn

    from stgnn.serve.app import create_app
    from stgnn.serve.recommender import Recommender
    from stgnn.serve.service import Service
    from stgnn.serve.store import CheckinStore

    logging.basicConfig(level=getattr(logging, spec.log_level.upper()),
                        format=f"%(asctime)s %(name)s [worker {os.getpid()}] %(message)s")
    torch.set_num_threads(spec.threads)
    send_lock = threading.Lock()

    def send(msg: tuple[Any, ...]) -> None:
        with send_lock:
            try:
                conn.send(msg)
            except OSError:          # the supervisor is gone; the listener below stops this worker
                pass

    store = CheckinStore(spec.store)
    rec = Recommender.from_run(spec.run_dir, store)
    service = Service.from_env(rec, store, peers=lambda run: send(("reload", str(run))))
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level=spec.log_level, access_log=False))

    def listen() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):      # the supervisor died: do not serve on alone
                server.should_exit = True
                return
            if msg[0] == "reload":
                service.reload_in_background(msg[1])
            elif msg[0] == "stop":           # as a first SIGTERM: finish the requests in flight, then exit
                server.should_exit = True

    threading.Thread(target=listen, name="stgnn-worker-control", daemon=True).start()
    signal.signal(signal.SIGHUP, lambda *_: service.reload_in_background())     # `kill -HUP <worker>`
    gc.collect()
    gc.freeze()
    sock = _listen(spec.host, spec.port)       # only once loaded: until then the others take every connection
    send(("ready", os.getpid()))
    server.run(sockets=[sock])
    store.close()


class _Worker:
    def __init__(self, ctx: Any, spec: WorkerSpec) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(spec, child), name="stgnn-serve-worker")
        self.proc.start()
        child.close()
        self.ready = False

    def send(self, msg: tuple[Any, ...]) -> None:
        try:
            self.conn.send(msg)
        except OSError:                      # it is exiting; the supervisor loop restarts it
            pass


def serve_workers(spec: WorkerSpec, n: int, banner: str = "", held: socket.socket | None = None) -> int:
    """Run ``n`` workers on ``spec.host:spec.port`` until SIGTERM/SIGINT (module docstring). Returns
    the exit code. ``held``: the port already reserved (:func:`reserve_port`); else it is reserved
    here (``ValueError`` when it cannot be had)."""
    if n < 2:
        raise ValueError(f"--workers {n}: serve_workers is for 2 or more (1 serves in this process)")
    held = held if held is not None else reserve_port(spec.host, spec.port)
    ctx = mp.get_context("spawn")
    flags = {"stop": False, "reload": False}
    signal.signal(signal.SIGTERM, lambda *_: flags.update(stop=True))
    signal.signal(signal.SIGINT, lambda *_: flags.update(stop=True))
    signal.signal(signal.SIGHUP, lambda *_: flags.update(reload=True))
    workers = [_Worker(ctx, spec) for _ in range(n)]
    announced, code = False, 0
    while not flags["stop"]:
        for r in wait([w.conn for w in workers] + [w.proc.sentinel for w in workers], timeout=0.2):
            w = next((w for w in workers if w.conn is r), None)
            if w is None:
                continue                     # a sentinel: handled below
            try:
                msg = w.conn.recv()
            except (EOFError, OSError):
                continue
            if msg[0] == "ready":
                w.ready = True
            elif msg[0] == "reload":        # one worker reloaded over HTTP: the others follow
                spec = replace(spec, run_dir=msg[1])       # and a restarted worker loads it too
                for other in workers:
                    if other is not w:
                        other.send(("reload", msg[1]))
        if not announced and all(w.ready for w in workers):
            announced = True
            print(f"{banner}{n} workers (pids {' '.join(str(w.proc.pid) for w in workers)})", flush=True)
        if flags["reload"]:
            flags["reload"] = False
            for w in workers:
                w.send(("reload", None))
        for i, w in enumerate(workers):
            if w.proc.exitcode is None or flags["stop"]:
                continue
            if not w.ready:
                print(f"stgnn serve: worker {w.proc.pid} exited with {w.proc.exitcode} before serving; "
                      "stopping (its error is above)", file=sys.stderr, flush=True)
                flags["stop"], code = True, 1
                break
            log.warning("worker %d exited with %s; starting another", w.proc.pid, w.proc.exitcode)
            w.conn.close()
            workers[i] = _Worker(ctx, spec)
    _stop(workers)
    held.close()
    return code


def _stop(workers: list[_Worker]) -> None:
    """Ask every worker to stop (requests in flight finish), then SIGKILL what remains after
    :data:`STOP_TIMEOUT_S`. A message, not SIGTERM: after Ctrl-C every worker of the terminal's
    process group has had its SIGINT already, and a second signal makes uvicorn drop requests."""
    for w in workers:
        if w.proc.exitcode is None:
            w.send(("stop",))
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for w in workers:
        w.proc.join(max(0.0, deadline - time.monotonic()))
        if w.proc.exitcode is None:
            w.proc.kill()
            w.proc.join(5)
        w.conn.close()


__all__ = ["WorkerSpec", "reserve_port", "serve_workers"]
