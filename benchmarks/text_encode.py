"""Benchmark: encode every NYC POI text with the default text encoder, cold and from cache.

Texts: the POI names (category + venue text, :func:`stgnn.features.profiles.poi_names`) and the
training-only profiles (:func:`~stgnn.features.profiles.poi_profiles`, one distinct text per
POI) of the default protocol's split. Without the loader / protocol it falls back to the
category column of the file read with pandas (names only).

Each phase runs in a fresh process: ``cold`` starts with an empty cache (model load + encode),
``cache`` reads the vectors back in a new process (the model is never loaded). Times are wall
seconds of the ``encode`` call; the model load happens inside the first cold call.

    python benchmarks/text_encode.py --device cpu --out results/bench/text_encode.json

Targets (2 CPU cores): all POI texts in < 60 s cold, < 1 s from cache.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stgnn.utils.io import atomic_write_json

NYC = "foursquare_nyc/nyc_filtered_tsmc2014.txt.gz"


def load_texts(path: Path) -> tuple[dict[str, list[str]], str]:
    """``{"names": [...], "profiles": [...]}`` per POI and a note on how they were made."""
    try:
        from stgnn.data.protocol import ProtocolConfig, make_split
        from stgnn.data.sources.foursquare import load_tsmc2014
        from stgnn.features.profiles import poi_names, poi_profiles

        split = make_split(load_tsmc2014(path), ProtocolConfig())
        return {"names": poi_names(split), "profiles": poi_profiles(split)}, f"split: {split!r}"
    except Exception as e:  # noqa: BLE001 - the loader may not exist yet; the fallback says so
        import pandas as pd

        df = pd.read_csv(path, sep="\t", header=None, usecols=[1, 3], names=["poi", "category"],
                         encoding="latin-1", dtype=str)
        cats = df.drop_duplicates("poi")["category"].fillna("").tolist()
        return {"names": cats}, f"fallback (pandas category column; {type(e).__name__}: {e})"


def _phase(spec: str, device: str, batch_size: int, fp16: bool, threads: int, cache_dir: str,
           texts: dict[str, list[str]], q: "mp.Queue[dict[str, Any]]") -> None:
    import torch

    import stgnn.features.text as text_module
    from stgnn.features.text import make_text_encoder

    torch.set_num_threads(threads)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    enc = make_text_encoder(spec, device=device, batch_size=batch_size, fp16=fp16, cache_dir=cache_dir,
                            progress=False)
    out["make_s"] = time.perf_counter() - t0
    for name, tx in texts.items():
        text_module._MEMO.clear()  # each row pays its own read of the cache file
        t0, c0 = time.perf_counter(), time.process_time()
        vecs = enc.encode(tx)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        out[f"{name}_s"] = time.perf_counter() - t0
        out[f"{name}_cpu_s"] = time.process_time() - c0  # all threads' CPU time: robust to a busy machine
        out[f"{name}_shape"] = list(vecs.shape)
    out["model_loaded"] = getattr(enc, "_model", None) is not None
    out["torch_threads"] = torch.get_num_threads()
    q.put(out)


def measure(*args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_phase, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", default=None, help=f"TSMC2014 file (default $STGNN_DATA_DIR/{NYC})")
    ap.add_argument("--spec", default="minilm", help="text encoder spec (make_text_encoder)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--fp16", action="store_true", help="half precision (CUDA only)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch CPU threads")
    ap.add_argument("--texts", default=None, help="read the texts from this JSON ({name: [text, ...]})")
    ap.add_argument("--save-texts", default=None, help="write the texts as JSON here (for --texts elsewhere)")
    ap.add_argument("--out", default="results/bench/text_encode.json", help="JSON output path")
    args = ap.parse_args(argv)
    import json

    t0 = time.perf_counter()
    if args.texts:
        texts, how = json.loads(Path(args.texts).read_text()), f"JSON {args.texts}"
        path = Path(args.texts)
    else:
        path = Path(args.file) if args.file else Path(os.environ.get("STGNN_DATA_DIR", "")) / NYC
        if not path.is_file():
            print(f"no data file {path}; set STGNN_DATA_DIR or pass --file", file=sys.stderr)
            return 2
        texts, how = load_texts(path)
    build_s = time.perf_counter() - t0
    if args.save_texts:
        atomic_write_json(args.save_texts, texts)
    with tempfile.TemporaryDirectory() as cache:
        opts = (args.spec, args.device, args.batch_size, args.fp16, args.threads, cache, texts)
        cold = measure(*opts)
        cached = measure(*opts)
    rows = []
    for name, tx in texts.items():
        rows.append({"texts": name, "n": len(tx), "unique": len(set(tx)), "cold_s": cold[f"{name}_s"],
                     "cold_cpu_s": cold[f"{name}_cpu_s"], "cache_s": cached[f"{name}_s"]})
    print(f"{args.spec} on {args.device}{' fp16' if args.fp16 else ''}, {args.threads} threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; texts from {how}; built in {build_s:.1f} s")
    print(f"{'texts':10s} {'n':>6s} {'unique':>6s} {'cold s':>8s} {'cold cpu s':>10s} {'cache s':>8s}")
    for r in rows:
        print(f"{r['texts']:10s} {r['n']:6d} {r['unique']:6d} {r['cold_s']:8.2f} {r['cold_cpu_s']:10.2f} "
              f"{r['cache_s']:8.3f}")
    print(f"cold phase: make {cold['make_s']:.2f} s (the model loads inside the first encode); "
          f"cache phase loaded a model: {cached['model_loaded']}")
    result = {"benchmark": "text_encode", "spec": args.spec, "device": args.device, "batch_size": args.batch_size,
              "fp16": args.fp16, "threads": args.threads, "loadavg_1min": os.getloadavg()[0],
              "file": str(path), "texts_from": how, "build_texts_s": build_s, "rows": rows, "cold": cold,
              "cache": cached, "cpus": os.cpu_count(), "platform": platform.platform(),
              "targets": {"cold_s": 60, "cache_s": 1}}
    atomic_write_json(args.out, result)
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
