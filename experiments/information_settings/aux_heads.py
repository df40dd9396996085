"""Collect the auxiliary-heads ablation (issue 11, ``model_kwargs.aux``) into JSON and Markdown.

Arms are run folder roots holding ``seed_<s>`` folders made by ``stgnn train`` with the table's
STGNN config and its late prior (README.md, section "Auxiliary category / region heads", gives
the commands); ``none`` is the arm without heads. The paired bootstrap of arm minus none on val
and test comes from :func:`lm_stgnn_variants.collect`. For every arm with heads this also
records what the heads learned: on val, the Acc@1 of each head at predicting the target POI's
category / region from ``u``, beside two no-learning references (the training period's most
frequent class, and the class of the sample's last prefix POI). Usage::

    python experiments/information_settings/aux_heads.py none=RUNS/base c02_r02=RUNS/aux_c02_r02 \\
        --seeds 0 1 --out experiments/information_settings/aux_heads.json
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_stgnn_variants import arm_parser, collect, parse_arms, table  # noqa: E402

from stgnn.utils.io import atomic_write_json  # noqa: E402


@torch.no_grad()
def head_accuracy(run_dir: Path, part: str = "val") -> dict[str, dict[str, float]]:
    """``{target: {"head": acc, "majority": acc, "last_poi": acc, "n": count}}`` on ``part``."""
    from stgnn.data.batch import SampleLoader
    from stgnn.data.information import InformationSetting
    from stgnn.recipes import load_split
    from stgnn.train.loop import loader_options
    from stgnn.train.restore import load_trained

    run = load_trained(run_dir)
    model, cfg = run.model, run.config
    if model.aux is None:
        return {}
    split = load_split(cfg)
    loader = SampleLoader(split, part, cfg.train.eval_batch_size,
                          **loader_options(InformationSetting.from_protocol(split.protocol), cfg.train,
                                           model.uses_target_time))
    train_targets = torch.as_tensor(split.poi[split.samples["train"]])
    out: dict[str, dict[str, float]] = {}
    for t in model.aux.heads:
        table_ = getattr(model.aux, f"{t}_of_poi")
        train_lab = table_[train_targets]
        majority = int(torch.bincount(train_lab[train_lab >= 0]).argmax())
        hits = {"head": 0, "majority": 0, "last_poi": 0}
        n = 0
        for b in loader:
            y = table_[b.target_poi]
            ok = y >= 0
            pred = model.aux.logits(model(b)["u"])[t].argmax(-1)
            hits["head"] += int((pred == y)[ok].sum())
            hits["majority"] += int((y == majority)[ok].sum())
            hits["last_poi"] += int((table_[b.last_poi] == y)[ok].sum())
            n += int(ok.sum())
        out[t] = {**{k: v / max(n, 1) for k, v in hits.items()}, "n": n}
    return out


def main() -> None:
    ap = arm_parser(__doc__.splitlines()[0], [0, 1])
    ap.add_argument("--notes", default="", help="anything else the record must say (e.g. the baseline's provenance)")
    args = ap.parse_args()
    arms = parse_arms(args.arms)
    record = collect(arms, args.seeds, experiment="auxiliary category/region heads (model_kwargs.aux)")
    heads = {}
    for arm, root in arms.items():
        for s in args.seeds:
            if arm != "none" and (root / f"seed_{s}" / "ranks.npz").exists():
                heads[f"{arm}/seed_{s}"] = head_accuracy(root / f"seed_{s}")
    record.update(head_accuracy_val=heads, load=args.load, commands=args.commands, notes=args.notes)
    atomic_write_json(args.out, record)
    print(table(record))
    for k, v in heads.items():
        print(k, {t: {m: round(x, 4) for m, x in d.items()} for t, d in v.items()})


if __name__ == "__main__":
    main()
