"""``stgnn serve`` and ``stgnn replay``: argument parsers and command functions.

:func:`add_parsers` is called by :mod:`stgnn.cli` (one delimited block there); the commands
live here so the CLI module stays a thin dispatcher.
"""
from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stgnn.serve.store import CheckinStore

DEFAULT_STORE = "serve_store.sqlite"


def _time(value: str | None, flag: str) -> int | None:
    if value is None:
        return None
    from stgnn.serve.app import ApiError, parse_time

    try:
        return parse_time(value, flag)
    except ApiError as e:
        raise ValueError(e.message) from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Open (or create and seed) the store, load the run, serve HTTP until interrupted."""
    import torch

    try:
        import uvicorn

        from stgnn.serve.app import create_app
    except ImportError as e:
        raise ValueError(f"stgnn serve needs the serve extra ({e.name} is missing): pip install -e '.[serve]'") from None
    from stgnn.serve.loading import load_split_of_run, resolve_run_dir
    from stgnn.serve.recommender import Recommender
    from stgnn.serve.service import TOKEN_ENV, Service
    from stgnn.serve.store import CheckinStore

    seed_until = _time(args.seed_until, "--seed-until")      # bad input fails before anything slow
    if not 1 <= args.workers <= 64:
        raise ValueError(f"--workers {args.workers}: give 1 to 64 server processes")
    held = None
    if args.workers > 1:          # a taken port fails before the (slow) seeding
        from stgnn.serve.workers import reserve_port

        held = reserve_port(args.host, args.port)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format="%(asctime)s %(name)s %(message)s")
    # one request's tensors are small: one intra-op thread each, and the cores serve requests side by side
    torch.set_num_threads(args.threads)
    run_dir = resolve_run_dir(args.run)
    store_path = Path(args.store) if args.store else run_dir / DEFAULT_STORE
    store = CheckinStore(store_path)
    if store.count() == 0:
        split = load_split_of_run(run_dir)
        n = store.seed_from_split(split, until=seed_until)
        print(f"seeded {store_path} with {n} check-ins of {split.name}", flush=True)
        del split
    else:
        print(f"store {store_path}: {store.count()} check-ins (not re-seeded)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get(TOKEN_ENV):
        print(f"warning: serving on {args.host} without {TOKEN_ENV}: anyone who can reach it can write check-ins",
              file=sys.stderr)
    if args.workers > 1:
        return _serve_workers(args, run_dir, store, held)
    rec = Recommender.from_run(run_dir, store)
    service = Service.from_env(rec, store)
    app = create_app(service)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: service.reload_in_background())
    gc.collect()
    gc.freeze()       # the loaded model and catalog never die: keep them out of every GC pass
    print(f"serving {rec.loaded.name} ({type(rec.model).__name__}) on http://{args.host}:{args.port}/  "
          f"(API docs at /docs; writes {'need a bearer token' if service.token else 'are open'}; "
          f"pid {os.getpid()}, SIGHUP reloads)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    store.close()
    return 0


def _serve_workers(args: argparse.Namespace, run_dir: Path, store: CheckinStore, held: socket.socket) -> int:
    """``--workers N``: this process binds the port and supervises N worker processes
    (:mod:`stgnn.serve.workers`); each loads the run and serves from the same store."""
    from stgnn.serve.service import TOKEN_ENV
    from stgnn.serve.workers import WorkerSpec, serve_workers

    path = store.path
    store.close()                 # seeded (or found seeded) above; the workers open their own
    spec = WorkerSpec(run_dir=str(run_dir), store=str(path), host=args.host, port=args.port, threads=args.threads,
                      log_level=args.log_level)
    writes = "need a bearer token" if os.environ.get(TOKEN_ENV) else "are open"
    return serve_workers(spec, args.workers, held=held,
                         banner=f"serving {run_dir} on http://{args.host}:{args.port}/  (API docs at /docs; "
                                f"writes {writes}; supervisor pid {os.getpid()}, SIGHUP reloads every worker) with ")


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay the held-out period through two runs; print the report, write the JSON."""
    import torch

    from stgnn.serve.replay import format_replay, run_replay
    from stgnn.utils.io import atomic_write_json

    torch.set_num_threads(args.threads)
    res = run_replay(args.run_a, args.run_b, start=_time(args.start, "--from"), end=_time(args.end, "--to"),
                     k=args.k, limit=args.limit, progress=lambda m: print(m, flush=True), n_boot=args.n_boot)
    print(format_replay(res))
    if args.out:
        atomic_write_json(args.out, res if args.keep_ranks else {k: v for k, v in res.items()
                                                                 if k not in ("ranks", "event_index")})
        print(f"wrote {args.out}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` and ``replay`` to the ``stgnn`` CLI."""
    sp = sub.add_parser("serve", help="serve a trained run over HTTP (recommendations, check-ins, map page)")
    sp.add_argument("--run", required=True, help="run folder, e.g. results/reproduce_nyc_fast/runs/STGNN/seed_0")
    sp.add_argument("--store", default=None, help=f"SQLite check-in store [<run>/{DEFAULT_STORE}]; created and "
                                                  "seeded from the run's dataset when empty")
    sp.add_argument("--seed-until", default=None, metavar="TIME",
                    help="seed a new store with check-ins before TIME (UTC s or ISO 8601) [all]")
    sp.add_argument("--host", default="127.0.0.1", help="bind address [127.0.0.1: this machine only]")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--threads", type=int, default=1, help="torch threads per request [1]")
    sp.add_argument("--workers", type=int, default=1,
                    help="server processes on the one port, sharing the store (one core each) [1: this process]")
    sp.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("replay", help="A/B of two runs on the replayed held-out period (online metrics, CI)")
    sp.add_argument("run_a")
    sp.add_argument("run_b")
    sp.add_argument("--from", dest="start", default=None, metavar="TIME",
                    help="first streamed check-in time (UTC s or ISO 8601) [the split's val_end: the test period]")
    sp.add_argument("--to", dest="end", default=None, metavar="TIME", help="stream up to TIME (exclusive) [the end]")
    sp.add_argument("--k", type=int, default=10, help="top-k asked per request [10]")
    sp.add_argument("--limit", type=int, default=None, help="stop after this many check-ins")
    sp.add_argument("--n-boot", type=int, default=1000)
    sp.add_argument("--threads", type=int, default=1)
    sp.add_argument("--out", default=None, help="write the result JSON here")
    sp.add_argument("--keep-ranks", action="store_true", help="keep per-check-in ranks in the JSON")
    sp.set_defaults(func=cmd_replay)


__all__ = ["add_parsers", "cmd_replay", "cmd_serve"]
