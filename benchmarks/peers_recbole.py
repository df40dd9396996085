"""One RecBole 1.2.1 model on our exported NYC split; run by ``benchmarks/peers.py`` in RecBole's venv.

Not imported by stgnn (RecBole needs numpy<2, pandas<3, setuptools<81 and an older torch load
default, so it lives in its own venv): ``peers.py`` writes the atomic files and calls

    <venv>/bin/python benchmarks/peers_recbole.py --model SASRec --data DIR --epochs 2 --threads 2

which prints one JSON line: seconds of each training epoch (RecBole's own ``_train_epoch``,
nothing else), peak RSS, and test Acc@1 / Acc@10 / MRR computed here, on our test samples, with
our rule: the target's rank is ``1 + #{other items scoring >= it}`` over ALL items (ties
pessimistic, no history masking: RecBole masks a user's training items for general models such
as LightGCN, which changes next-POI ranking, where most targets are revisits).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

# RecBole 1.2.1 calls torch.load on its own checkpoints without weights_only (torch >= 2.6 default True)
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

SEQUENTIAL = {"SASRec", "GRU4Rec"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=["SASRec", "GRU4Rec", "LightGCN"])
    p.add_argument("--data", required=True, help="folder holding <name>/<name>.{train,valid,test}.inter")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--config", default="{}", help="JSON of RecBole options (batch size, lr, sizes...)")
    args = p.parse_args(argv)

    import numpy as np
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(args.threads)
    name = "nyc_seq" if args.model in SEQUENTIAL else "nyc_gen"
    opts = {
        "data_path": args.data, "benchmark_filename": ["train", "valid", "test"], "epochs": args.epochs,
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": None,
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"] if args.model in SEQUENTIAL else ["user_id", "item_id"]},
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "TO" if args.model in SEQUENTIAL else "RO",
                      "mode": "full", "group_by": "user"},
        "metrics": ["Hit", "MRR"], "topk": [10], "valid_metric": "MRR@10", "seed": 0, "reproducibility": True,
        "show_progress": False, "device": "cpu", "use_gpu": False, "checkpoint_dir": os.path.join(args.data, "saved"),
        "log_wandb": False, "state": "WARNING",
        **json.loads(args.config),
    }
    config = Config(model=args.model, dataset=name, config_dict=opts)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

    seconds, cpu = [], []
    for epoch in range(args.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = trainer._train_epoch(train_data, epoch, show_progress=False)
        seconds.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        print(f"epoch {epoch}: loss {float(np.sum(loss) if isinstance(loss, tuple) else loss):.4f} "
              f"{seconds[-1]:.1f} s", file=sys.stderr, flush=True)

    # our metrics on our test samples: every item scored, pessimistic ties, nothing masked
    model.eval()
    test = test_data._dataset
    ranks = []
    with torch.no_grad():
        for i in range(0, len(test), 512):
            inter = test[np.arange(i, min(i + 512, len(test)))]
            scores = model.full_sort_predict(inter).view(len(inter), -1).float()  # (b, items) incl. [PAD]
            scores = scores[:, 1:]                                               # drop RecBole's padding id 0
            target = inter["item_id"].long() - 1
            t = scores.gather(1, target[:, None])
            ranks.append((scores >= t).sum(1))
    r = torch.cat(ranks).double()
    result = {
        "model": args.model, "library": "RecBole 1.2.1", "epochs": args.epochs, "threads": args.threads,
        "seconds_per_epoch": [round(s, 2) for s in seconds], "cpu_seconds_per_epoch": [round(c, 2) for c in cpu],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "items": int(dataset.item_num - 1), "users": int(dataset.user_num - 1), "test_samples": len(r),
        "test": {"Acc@1": float((r <= 1).double().mean()), "Acc@10": float((r <= 10).double().mean()),
                 "MRR": float((1.0 / r).mean())},
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
