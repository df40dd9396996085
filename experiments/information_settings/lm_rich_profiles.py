"""LM check: does a richer train-only POI profile make the zero-shot intent score help the tuned reference?

The earlier check (README, *The language model*) fused the MiniLM cosine between a sample's
prefix rendered as text and each POI's training profile into the tuned reference and found it
hurts. Here the POI profile also names what typically comes before and after the POI (the two
most frequent categories of its training predecessors and successors), the transition knowledge
a next-POI text match lacks. For each profile variant: score = log(r + 1e-4) + a * log_softmax(cos / tau),
(a, tau) picked on validation MRR, paired bootstrap CIs against the reference alone on val (the
selection's own samples, so optimistic for the LM) and on test (scored once).

    STGNN_DATA_DIR=... python experiments/information_settings/lm_rich_profiles.py --out experiments/information_settings/lm_rich_profiles.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stgnn.config import ExperimentConfig  # noqa: E402
from stgnn.data.batch import SampleLoader  # noqa: E402
from stgnn.eval.metrics import metrics_from_ranks, ranks  # noqa: E402
from stgnn.eval.significance import paired_bootstrap  # noqa: E402
from stgnn.features.profiles import default_region_labels, neighbour_profiles, poi_profiles, trajectory_texts  # noqa: E402
from stgnn.features.text import make_text_encoder  # noqa: E402
from stgnn.recipes import load_split  # noqa: E402
from stgnn.registry import build_for_split  # noqa: E402

# the tuned reference of (train_only, known): tune_user_history_train_only_known.json
REFERENCE = {"half_life": 60, "transition_weight": 0.2, "time_weight": 0.6, "time_sigma": 1.5, "counts": "train"}
GRID = [(a, tau) for a in (0.03, 0.1, 0.3, 1.0) for tau in (0.05, 0.1)]


def part_scores(split, ref, part: str) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``(S, P)`` log reference probabilities, ``(S,)`` targets and the samples of ``part``."""
    idx = split.samples[part]
    loader = SampleLoader(split, part, 1024, history="train_only", target_time="known")
    logs, ys = [], []
    for i in range(0, len(idx), 1024):
        b = loader.make_batch(idx[i:i + 1024])
        with torch.no_grad():
            logs.append(torch.log(ref.score(b).double() + 1e-4).float())
        ys.append(b.target_poi)
    return torch.cat(logs), torch.cat(ys), idx


def fused_check(parts: dict, intent: dict[str, torch.Tensor], poi: torch.Tensor,
                alone_metrics: tuple[str, ...] = ("Acc@1", "MRR")) -> dict:
    """The intent score alone and fused into the reference, ``(a, tau)`` picked on val MRR over
    :data:`GRID`; paired bootstrap CIs of fused minus reference on every part.

    Shapes: ``parts[p]`` as :func:`part_scores` returns; ``intent[p] (S, D)``, ``poi (P, D)``
    (cosine: both are normalised here).
    """
    poi = torch.nn.functional.normalize(poi, dim=-1)
    r_ref = {p: ranks(parts[p][0], parts[p][1]) for p in parts}
    cos = {p: torch.nn.functional.normalize(intent[p], dim=-1) @ poi.T for p in parts}   # (S, P)
    grid = []
    for w, tau in GRID:
        r = ranks(parts["val"][0] + w * (cos["val"] / tau).log_softmax(-1), parts["val"][1])
        grid.append({"a": w, "tau": tau, "val_MRR": metrics_from_ranks(r)["MRR"]})
    best = max(grid, key=lambda g: g["val_MRR"])
    res: dict = {"grid": grid, "best": best}
    for p in parts:
        r = ranks(parts[p][0] + best["a"] * (cos[p] / best["tau"]).log_softmax(-1), parts[p][1])
        alone = metrics_from_ranks(ranks(cos[p], parts[p][1]))
        res[p] = {"fused_minus_reference": paired_bootstrap(r, r_ref[p]),
                  "intent_alone": {k: alone[k] for k in alone_metrics},
                  "reference": {k: metrics_from_ranks(r_ref[p])[k] for k in ("Acc@1", "MRR")}}
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    split = load_split(ExperimentConfig(dataset="nyc"))
    ref = build_for_split("user_history", split, **REFERENCE)
    regions = default_region_labels(split)
    enc = make_text_encoder("minilm", device="cpu")
    base = poi_profiles(split, regions)
    variants = {"profile": base, "profile+neighbours": neighbour_profiles(split, base)}
    parts = {p: part_scores(split, ref, p) for p in ("val", "test")}
    intent = {p: torch.nn.functional.normalize(enc.encode(trajectory_texts(split, parts[p][2], region_labels=regions))
                                               .float(), dim=-1) for p in parts}
    out = {"reference": REFERENCE, "grid": GRID, "example": {k: v[int(np.argmax([len(t) for t in v]))]
                                                              for k, v in variants.items()}, "variants": {}}
    for name, texts in variants.items():
        res = fused_check(parts, intent, enc.encode(texts).float())
        out["variants"][name] = res
        print(name, json.dumps({p: res[p]["fused_minus_reference"] for p in parts}, indent=1), res["best"], flush=True)
    out["seconds"] = time.perf_counter() - t0
    out["conditions"] = "1 torch thread, CPU shared with other jobs (load 6-8 on 2 cores)"
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
