"""A real ``stgnn serve`` process on 127.0.0.1 for the tests that need one (durability, load, page)."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m stgnn serve --run RUN --store STORE --port PORT [--workers N]`` started and waited for
    (with ``workers`` > 1: until every worker serves).

    Always bound to 127.0.0.1, in its own session (process group); ``stop()`` terminates the server
    (its supervisor stops its workers), ``kill()`` SIGKILLs the server and every worker: only
    processes this object started.
    """

    def __init__(self, run: Path, store: Path, log: Path, token: str | None = None, timeout_s: float = 180.0,
                 workers: int = 1) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env.pop("STGNN_API_TOKEN", None)
        if token:
            env["STGNN_API_TOKEN"] = token
        self.log = log
        self._log_f = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stgnn", "serve", "--run", str(run), "--store", str(store), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(workers)], stdout=self._log_f, stderr=subprocess.STDOUT,
            env=env, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stgnn serve exited with {self.proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if self.get("/healthz")[0] == 200 and (workers == 1 or f"{workers} workers (pids" in log.read_text()):
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"stgnn serve did not answer /healthz within {timeout_s} s: {log.read_text()[-2000:]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: Any = None, headers: dict | None = None,
                timeout: float = 10.0) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
            r = conn.getresponse()
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def worker_pids(self) -> list[int]:
        """The worker pids the supervisor printed (``--workers`` > 1)."""
        line = next(l for l in self.log.read_text().splitlines() if "workers (pids" in l)
        return [int(x) for x in line.split("(pids ")[1].rstrip(")").split()]

    def kill(self) -> None:
        """SIGKILL of the server's whole process group (the supervisor and its workers): no shutdown code runs."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        self._log_f.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self._log_f.close()
