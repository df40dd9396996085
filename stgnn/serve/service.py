"""The state behind the HTTP app: the recommender being served, the store, the token, hot swap.

Hot swap: :meth:`Service.reload` builds a complete new :class:`Recommender` (the slow part, while
the old one keeps answering), then replaces the reference in one assignment. A request reads
``service.recommender`` once at its start and uses that object to the end, so requests in flight
finish on the old model and every later request gets the new one; there is no moment when
neither is served. Reloads are serialised; a failed reload leaves the old model in place.

With ``stgnn serve --workers N`` every worker process holds its own :class:`Service`; ``peers``
(set by :mod:`stgnn.serve.workers`) tells the other workers about a reload asked over HTTP, so
``POST /admin/reload`` reloads every worker, not just the one that answered it.
"""
from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from stgnn.serve.recommender import Recommender
from stgnn.serve.store import CheckinStore

log = logging.getLogger("stgnn.serve")

TOKEN_ENV = "STGNN_API_TOKEN"


class Service:
    """What the app serves.

    Args:
        recommender: the model to serve first.
        store: the check-in store (shared by every model served over time).
        token: bearer token for writes and admin calls (``None``: writes are open, admin is off).
        loader: ``run_dir -> Recommender`` used by :meth:`reload` (default ``Recommender.from_run``
            over ``store``).
        peers: called with the loaded run folder after a reload with ``announce=True`` (the other
            worker processes' reload; ``None``: this process is the only one).
    """

    def __init__(self, recommender: Recommender, store: CheckinStore, token: str | None = None,
                 loader: Callable[[str | Path], Recommender] | None = None,
                 peers: Callable[[Path], None] | None = None) -> None:
        self.recommender = recommender
        self.store = store
        self.token = token or None
        self.loader = loader or (lambda run: Recommender.from_run(run, store))
        self.run_dir = Path(recommender.loaded.run_dir)
        self.started_at = time.time()
        self._reload_lock = threading.Lock()
        self.reloads = 0
        self.peers = peers

    @classmethod
    def from_env(cls, recommender: Recommender, store: CheckinStore, **kw: Any) -> "Service":
        return cls(recommender, store, token=os.environ.get(TOKEN_ENV), **kw)

    def authorized(self, header: str | None) -> bool:
        """Is ``Authorization: <header>`` the configured bearer token (always True without one)."""
        if self.token is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), self.token.encode())

    def reload(self, run_dir: str | Path | None = None, announce: bool = False) -> dict[str, Any]:
        """Load ``run_dir`` (default: the run served now, e.g. after it was retrained in place) and
        swap it in atomically (module docstring). Returns the new model's info. ``announce``: then
        have the peer workers (if any) load the same run (they swap when they have loaded it)."""
        with self._reload_lock:
            target = Path(run_dir) if run_dir is not None else self.run_dir
            t0 = time.perf_counter()
            new = self.loader(target)
            old = self.recommender
            self.recommender = new                 # the swap: one reference assignment
            self.run_dir = Path(new.loaded.run_dir)
            self.reloads += 1
            log.info("hot swap: %s -> %s in %.1f s", old.loaded.run_dir, new.loaded.run_dir, time.perf_counter() - t0)
            if announce and self.peers is not None:
                self.peers(self.run_dir)
            return {"previous": old.info(), "current": new.info(), "seconds": round(time.perf_counter() - t0, 3)}

    def reload_in_background(self, run_dir: str | Path | None = None) -> threading.Thread:
        """:meth:`reload` in a thread (for SIGHUP, whose handler must return at once); errors are logged."""
        def job() -> None:
            try:
                self.reload(run_dir)
            except Exception:       # a bad run must not take the server down: keep serving the old one
                log.exception("reload of %s failed; still serving %s", run_dir or self.run_dir,
                              self.recommender.loaded.run_dir)
        t = threading.Thread(target=job, name="stgnn-reload", daemon=True)
        t.start()
        return t
