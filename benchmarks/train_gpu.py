"""Benchmark: training and full-ranking throughput per device and AMP mode, on synthetic data.

Runs ``stgnn.train.fit`` for a few epochs per (model, amp) on a seeded synthetic dataset large
enough to keep a GPU busy, and reports training samples/s, evaluation samples/s (scoring all
POIs), seconds per epoch, peak GPU memory and the test metrics (to show AMP does not break
training). Each configuration is independent; a failing one is reported, not fatal.

    python benchmarks/train_gpu.py --device cuda --models lstm stgnn --amp none bf16 fp16 --out r.json
    python benchmarks/train_gpu.py --device cpu --models lstm --amp none --users 200   # CPU smoke run
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--models", nargs="+", default=["lstm", "stgnn"])
    p.add_argument("--amp", nargs="+", default=["none", "bf16", "fp16"])
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--pois", type=int, default=5000)
    p.add_argument("--days", type=int, default=56)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import torch

    from stgnn.config import TrainConfig
    from stgnn.data.protocol import ProtocolConfig, make_split
    from stgnn.data.sources.synthetic import generate
    from stgnn.registry import build_for_split
    from stgnn.train.loop import fit
    from stgnn.train.seed import seed_everything

    t0 = time.perf_counter()
    table = generate(num_users=args.users, num_pois=args.pois, days=args.days, seed=0)
    split = make_split(table, ProtocolConfig(min_user_checkins=5, min_poi_checkins=3))
    t_data = time.perf_counter() - t0
    n_train = len(split.samples["train"])
    print(f"data: {split} in {t_data:.1f} s", flush=True)
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "split": repr(split), "data_seconds": round(t_data, 2)}
    rows = []
    for model_name in args.models:
        for amp in args.amp:
            row = {"model": model_name, "amp": amp, "device": args.device}
            try:
                cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, eval_batch_size=1024, amp=amp,
                                  eval_amp=False, device=args.device, patience=0, progress=False,
                                  tensorboard=False, deterministic=False, schedule="none")
                seed_everything(0, deterministic=False)
                model = build_for_split(model_name, split)
                h = fit(model, split, cfg, None)
                sec = h.seconds_per_epoch
                row.update(seconds_per_epoch=[round(s, 3) for s in sec],
                           train_samples_per_s=round(n_train / min(sec), 1) if sec else None,
                           total_seconds=round(h.total_seconds, 2), peak_gpu_mb=h.peak_gpu_mb,
                           test={k: round(v, 4) for k, v in h.test_metrics.items() if k in ("Acc@1", "Acc@10", "MRR")})
                # evaluation throughput alone: score every POI for every val+test sample
                from stgnn.data.batch import SampleLoader
                from stgnn.eval.evaluate import evaluate

                loader = SampleLoader(split, "test", 1024)
                dev = torch.device(args.device)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t1 = time.perf_counter()
                evaluate(model, loader, dev)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                row["eval_samples_per_s"] = round(len(loader.targets) / (time.perf_counter() - t1), 1)
            except Exception as e:  # noqa: BLE001 - report and go on with the next configuration
                row["error"] = f"{type(e).__name__}: {e}"
                traceback.print_exc()
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\n{'model':<10}{'amp':<6}{'s/epoch':>10}{'train/s':>12}{'eval/s':>12}{'GPU MB':>10}{'Acc@1':>8}{'MRR':>8}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<10}{r['amp']:<6}  ERROR {r['error'][:80]}")
            continue
        print(f"{r['model']:<10}{r['amp']:<6}{min(r['seconds_per_epoch']):>10.2f}{r['train_samples_per_s']:>12.0f}"
              f"{r['eval_samples_per_s']:>12.0f}{(r['peak_gpu_mb'] or 0):>10.0f}{r['test']['Acc@1']:>8.3f}{r['test']['MRR']:>8.3f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
