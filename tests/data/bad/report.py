"""Print the README's table of bad inputs: run every corpus file and bad config, count outcomes.

``python tests/data/bad/report.py`` (from the repository root). The README holds this output
verbatim, and ``tests/data/test_bad_inputs.py`` fails when the two differ, so the table's numbers
are always the measured ones.
"""
from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs  # noqa: E402
import corpus  # noqa: E402


def table(files: list[corpus.Outcome], cfgs: list[corpus.Outcome]) -> str:
    """Markdown table of the outcome counts."""
    f, c = Counter(o.status for o in files), Counter(o.status for o in cfgs)
    bad_files = sum(o.expect != "accept" for o in files)
    rows = [
        "| bad input | tried | refused (exit 2), one line with file:line:field or key | bad rows flagged "
        "(exit 1) with file:line:field | valid files accepted | tracebacks | silently wrong |",
        "|---|---|---|---|---|---|---|",
        f"| malformed files in `tests/data/bad/` (TSMC2014, Gowalla, CSV, Parquet, gzip, pre-split; "
        f"{bad_files} bad, {len(files) - bad_files} valid) | {len(files)} | {f['refused']} | {f['flagged']} | "
        f"{f['accepted']} | {f['traceback']} | {f['wrong']} |",
        f"| bad configs and command lines (`tests/data/bad/configs.py`) | {len(cfgs)} | {c['refused']} | – | – | "
        f"{c['traceback']} | {c['wrong']} |",
    ]
    return "\n".join(rows) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(table(corpus.run_all(), configs.run_all(Path(tmp))), end="")


if __name__ == "__main__":
    main()
