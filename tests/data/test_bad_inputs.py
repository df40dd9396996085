"""The corpus of malformed files and the table of bad configs: every one refused by name.

Files: ``tests/data/bad/`` (written by ``make_corpus.py``, expected outcomes in ``cases.json``),
each run through ``stgnn data check``. Configs: ``tests/data/bad/configs.py``, each run through
the CLI. No traceback, nothing accepted silently; and the README's table is this run's counts.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BAD = Path(__file__).resolve().parent / "bad"
sys.path.insert(0, str(BAD))

import configs  # noqa: E402
import corpus  # noqa: E402
import make_corpus  # noqa: E402
import report  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def file_outcomes():
    return corpus.run_all()


@pytest.fixture(scope="module")
def config_outcomes(tmp_path_factory):
    return configs.run_all(tmp_path_factory.mktemp("bad_configs"))


def test_corpus_is_what_the_generator_writes():
    cases = make_corpus.cases()
    assert len(cases) >= 60 and json.loads((BAD / "cases.json").read_text()) == [
        {k: v for k, v in c.items() if k != "data"} for c in cases]
    for c in cases:
        if not c["file"].endswith(".parquet"):  # Parquet bytes carry the writer's version
            data = c["data"].encode("utf-8") if isinstance(c["data"], str) else c["data"]
            assert (BAD / c["file"]).read_bytes() == data, c["file"]
    kinds = {c["file"].split("_")[0] for c in cases}
    assert kinds == {"tsmc", "gowalla", "csv", "pq", "gz", "presplit"}


def test_every_malformed_file_is_refused_or_flagged_by_file_line_field(file_outcomes):
    failures = [f"{o.file}: {o.status}: {o.detail}" for o in file_outcomes
                if o.status not in ("refused", "flagged", "accepted")]
    assert not failures, "\n".join(failures)
    assert sum(o.expect != "accept" for o in file_outcomes) >= 60


def test_every_bad_config_is_refused_in_one_line_naming_the_key(config_outcomes):
    failures = [f"{o.file}: {o.status}: {o.detail}" for o in config_outcomes if o.status != "refused"]
    assert not failures, "\n".join(failures)
    assert len(config_outcomes) >= 40


def test_readme_table_is_the_measured_one(file_outcomes, config_outcomes):
    assert report.table(file_outcomes, config_outcomes) in README.read_text(), (
        "README's bad-input table is stale; paste the output of `python tests/data/bad/report.py`")
