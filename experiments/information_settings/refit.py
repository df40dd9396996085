"""STGNN refit on every check-in before the test period, for the real-time setting.

Under ``history: all_past`` a test sample may read every check-in before its target, and the
tuned reference does: its popularity and transitions are counted as of the query time, the
validation period included. STGNN's parameters and graph, by contrast, were fitted on the
training period alone and are 39–85 days old at the test targets. A live service would retrain
on everything it has; this script does that, the standard way:

1. the run given (``all_past``, trained on the training period, its epoch chosen on validation)
   fixes the number of epochs ``E`` (its best epoch);
2. a *refit split* relabels every validation-period check-in as training (``part`` 1 -> 0) and adds
   its trajectory positions as training samples (as the protocol makes them: ``pos >=
   min_train_prefix``); the test samples, their prefixes and histories are unchanged (asserted);
3. the same config is trained for exactly ``E`` epochs on it (cosine over ``E``) and its last
   epoch is scored once on test. Every validation check-in precedes every test target (the
   split's global cut; asserted), so no test sample sees anything at or after its target.

Validation scores of the refit model are meaningless (its targets are training samples now) and
are not reported. The test ranks are paired, sample for sample, with the tuned reference's run
and with the original run (paired bootstrap, 1,000 resamples).

    python experiments/information_settings/refit.py <full preset>/realtime/runs/STGNN/seed_0 \\
        --reference <full preset>/realtime/runs/UserHistory/seed_0 --out results/refit
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stgnn.config import from_dict, load_config, to_dict  # noqa: E402
from stgnn.data.information import InformationSetting  # noqa: E402
from stgnn.data.split import PARTS, Split  # noqa: E402
from stgnn.eval.metrics import metrics_from_ranks  # noqa: E402
from stgnn.data.protocol_config import ProtocolConfig  # noqa: E402
from stgnn.recipes.runs import compare_runs, load_split, run_one  # noqa: E402


def refit_split(split: Split, min_train_prefix: int = 1) -> Split:
    """``split`` with the validation period turned into training data (module docstring, step 2)."""
    if InformationSetting.from_protocol(split.protocol).history != "all_past":
        raise ValueError("a refit on the validation period is only the real-time setting's (history: all_past): "
                         "under train_only the validation period is not history")
    val_rows = split.part == PARTS["val"]
    first_test = int(split.ts[split.samples["test"]].min())
    if val_rows.any() and int(split.ts[val_rows].max()) >= first_test:
        raise ValueError("a validation check-in is at or after a test target; the refit would leak")
    traj = np.repeat(np.arange(len(split.traj_ptr) - 1), np.diff(split.traj_ptr))      # (N,)
    pos = np.arange(len(split.ts)) - split.traj_ptr[traj]                               # (N,)
    part = split.part.copy()
    part[val_rows] = PARTS["train"]
    added = np.flatnonzero(val_rows & (pos >= min_train_prefix))
    samples = dict(split.samples)
    samples["train"] = np.union1d(split.samples["train"], added).astype(np.int64)
    return dataclasses.replace(split, part=part, samples=samples)


def _ranks(run_dir: Path) -> np.ndarray:
    with np.load(run_dir / "ranks.npz") as z:
        return z["test_ranks"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="an all_past STGNN run folder (seed_N) with metrics.json")
    ap.add_argument("--reference", type=Path, required=True, help="the tuned reference's run of the same setting")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    t0 = time.perf_counter()
    cfg = load_config(a.run / "config.yaml")
    done = json.loads((a.run / "metrics.json").read_text())
    epochs, seed = int(done["best_epoch"]), int(cfg.train.seed)
    split = load_split(cfg)
    refit = refit_split(split, dict(cfg.protocol).get("min_train_prefix", ProtocolConfig().min_train_prefix))
    assert np.array_equal(refit.samples["test"], split.samples["test"])
    # exactly `epochs` epochs, the last one kept: every epoch "improves" (min_delta -inf), no early stop
    train = {**to_dict(cfg.train), "epochs": epochs, "patience": 0, "min_delta": -1e9}
    run_cfg = from_dict(type(cfg), {**to_dict(cfg), "name": f"{cfg.name}_refit", "train": train,
                                    "output_dir": str(a.out)})
    run_dir = a.out / f"seed_{seed}"
    metrics = run_one(run_cfg, seed, run_dir, split=refit, resume=True)
    new, old, ref = _ranks(run_dir), _ranks(a.run), _ranks(a.reference)
    assert len(new) == len(old) == len(ref) == len(split.samples["test"])
    res: dict[str, Any] = {
        "run": str(a.run), "reference": str(a.reference), "epochs": epochs, "seed": seed,
        "train_samples": {"original": int(len(split.samples["train"])), "refit": int(len(refit.samples["train"]))},
        "test": {name: {k: metrics_from_ranks(r)[k] for k in ("Acc@1", "Acc@10", "MRR")}
                 for name, r in (("refit", new), ("original", old), ("reference", ref))},
        "refit_minus_reference": compare_runs(run_dir, a.reference),   # checks the same test samples
        "refit_minus_original": compare_runs(run_dir, a.run),
        "best_epoch_reported_by_fit": metrics.get("best_epoch"),
        "seconds": round(time.perf_counter() - t0, 1)}
    (a.out / f"refit_seed_{seed}.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: res[k] for k in ("epochs", "train_samples", "test")}, indent=1))
    for k in ("refit_minus_reference", "refit_minus_original"):
        print(k, {m: f"{x['diff']:+.4f} [{x['lo']:+.4f}, {x['hi']:+.4f}]" for m, x in res[k].items()
                  if isinstance(x, dict)})


if __name__ == "__main__":
    main()
