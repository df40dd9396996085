"""Real-time recommendation: a trained run served in-process or over HTTP.

* :class:`~stgnn.serve.recommender.Recommender` — ``from_run(run_dir, store)``,
  ``recommend(user, at, k, exclude)``: top-k with scores and explanations.
* :class:`~stgnn.serve.store.CheckinStore` — SQLite (WAL, durable, idempotent): the user-history
  source of truth; new check-ins change the next answer without retraining.
* :mod:`stgnn.serve.app` — FastAPI app and the map page (``stgnn serve``).
* :mod:`stgnn.serve.replay` — offline A/B of two runs on a replayed stream (``stgnn replay``).
* :mod:`stgnn.serve.loading` — the one place a run folder becomes a model.

FastAPI and uvicorn are the ``serve`` extra; only :mod:`stgnn.serve.app` and the CLI need them.
"""
from __future__ import annotations

from typing import Any

_LAZY = {"Recommender": "stgnn.serve.recommender", "RequestError": "stgnn.serve.recommender",
         "CheckinStore": "stgnn.serve.store", "NewCheckin": "stgnn.serve.store", "StoreError": "stgnn.serve.store"}


def __getattr__(name: str) -> Any:
    # lazy: `stgnn --help` imports stgnn.serve.commands and must not pay for torch
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stgnn.serve' has no attribute {name!r}")


__all__ = ["CheckinStore", "NewCheckin", "Recommender", "RequestError", "StoreError"]
