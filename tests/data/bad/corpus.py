"""Run every case of ``cases.json`` through ``stgnn data check`` and judge the outcome.

Shared by ``tests/data/test_bad_corpus.py`` (which asserts) and ``report.py`` (which prints the
README's table), so the README's numbers are the test's numbers.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Outcome:
    """How one case ended: ``status`` is ``refused``/``flagged``/``accepted`` (as expected),
    ``traceback`` or ``wrong`` (anything else: the detail says what happened)."""

    file: str
    expect: str
    status: str
    detail: str


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``stgnn ARGV`` in-process: ``(exit code, stdout, stderr)``; loader warnings silenced."""
    from stgnn.cli import main

    out, err = io.StringIO(), io.StringIO()
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    finally:
        logging.disable(logging.NOTSET)
    return rc, out.getvalue(), err.getvalue()


def located(path: Path, line: int | None, field: str) -> str:
    return f"{path}:{line}: field '{field}'" if line is not None else f"{path}: field '{field}'"


def judge(case: dict, folder: Path = HERE) -> Outcome:
    path = folder / case["file"]
    rc, out, err = run_cli(["data", "check", str(path), *case["args"]])
    got = f"exit {rc}; stderr: {err.strip()[:300]!r}; stdout: {out.strip()[:300]!r}"
    if rc == 3 or "Traceback" in err:
        return Outcome(case["file"], case["expect"], "traceback", got)
    if case["expect"] == "refuse":
        want = located(path, case["line"], case["field"])
        ok = rc == 2 and len(err.strip().splitlines()) == 1 and want in err
        return Outcome(case["file"], "refuse", "refused" if ok else "wrong", f"want {want!r}; {got}")
    if case["expect"] == "flag":
        wants = [located(path, line, field) for line, field in case["errors"]]
        ok = rc == 1 and all(w in out for w in wants) and f"{len(wants)} bad rows skipped" in out
        return Outcome(case["file"], "flag", "flagged" if ok else "wrong", f"want {wants!r}; {got}")
    ok = rc == 0 and f"checkins={case['rows']}," in out
    return Outcome(case["file"], "accept", "accepted" if ok else "wrong", f"want {case['rows']} check-ins; {got}")


def load_cases(folder: Path = HERE) -> list[dict]:
    return json.loads((folder / "cases.json").read_text())


def run_all(folder: Path = HERE) -> list[Outcome]:
    return [judge(c, folder) for c in load_cases(folder)]
