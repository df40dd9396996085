"""``stgnn ...`` / ``python -m stgnn ...``: data, graph, train, eval, reproduce.

The CLI only parses arguments and calls library functions; dotted ``key=value`` overrides are
parsed here and in :mod:`stgnn.config`, nowhere else.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence


def _protocol(args: argparse.Namespace):
    from stgnn.data.protocol import ProtocolConfig

    kw = {}
    for item in getattr(args, "protocol_set", None) or []:
        key, _, value = item.partition("=")
        import yaml

        kw[key] = yaml.safe_load(value)
    if getattr(args, "protocol", None):
        kw.setdefault("protocol", args.protocol)
    import dataclasses

    valid = [f.name for f in dataclasses.fields(ProtocolConfig)]
    unknown = sorted(set(kw) - set(valid))
    if unknown:
        raise ValueError(f"unknown protocol option(s) {unknown}; valid options: {valid}")
    return ProtocolConfig(**kw)


def _prepare(args: argparse.Namespace):
    from stgnn.data.dataset import prepare

    return prepare(args.source, _protocol(args), root=Path(args.root), force_reload=args.force_reload)


def cmd_data_prepare(args: argparse.Namespace) -> int:
    split = _prepare(args)
    print(split)
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from stgnn.data.stats import format_stats

    split = _prepare(args)
    print(format_stats(split))
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from stgnn.data.schema import DataError
    from stgnn.data.sources import load_source

    try:
        table = load_source(args.file, on_bad_row=args.on_bad_row)
    except DataError as e:
        print(f"INVALID: {e}", file=sys.stderr)
        return 1
    print(table)
    rep = table.report
    print(f"rows read: {rep.rows_read}; duplicates dropped: {rep.duplicates_dropped}; "
          f"POIs given one canonical coordinate: {rep.pois_recoordinated}")
    print(rep.bad_rows)
    for note in rep.notes:
        print(f"note: {note}")
    return 0


def cmd_graph_stats(args: argparse.Namespace) -> int:
    from stgnn.graph.hetero import build_hetero_graph
    from stgnn.graph.stats import format_stats, graph_stats

    split = _prepare(args)
    data = build_hetero_graph(split)
    print(format_stats(graph_stats(data)))
    return 0


def cmd_graph_plot(args: argparse.Namespace) -> int:
    from stgnn.graph.stats import plot_pois

    split = _prepare(args)
    plot_pois(split, args.out, color_by=args.color_by)
    print(f"wrote {args.out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from stgnn.recipes import train_from_config

    overrides = list(args.overrides)
    if args.seeds:
        overrides.append(f"seeds=[{','.join(str(x) for x in args.seeds)}]")
    result = train_from_config(args.config, overrides, resume=args.resume)
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from stgnn.recipes import evaluate_run

    result = evaluate_run(Path(args.run), part=args.part)
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from stgnn.recipes import reproduce

    table = reproduce(args.table, preset=args.preset, seeds=args.seeds, models=args.models,
                      out=Path(args.out) if args.out else None, overrides=args.overrides,
                      resume=args.resume, jobs=args.jobs)
    print(table)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from stgnn.recipes import compare_runs

    res = compare_runs(Path(args.run_a), Path(args.run_b), part=args.part, n_boot=args.n_boot)
    for metric, d in res.items():
        print(f"{metric}: A={d['a']:.4f} B={d['b']:.4f} A-B={d['diff']:+.4f} "
              f"95% CI [{d['lo']:+.4f}, {d['hi']:+.4f}] p={d['p']:.3f} (n={int(d['n'])})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stgnn", description="Spatiotemporal next-POI recommendation.")
    sub = p.add_subparsers(dest="command", required=True)

    def data_args(sp: argparse.ArgumentParser, positional: bool = True) -> None:
        if positional:
            sp.add_argument("source", nargs="?", default="nyc",
                            help="dataset name (nyc, tky, gowalla, synthetic) or a file path [nyc]")
        sp.add_argument("--root", default=os.environ.get("STGNN_ROOT", "data"),
                        help="folder holding raw/ and processed/ [data]")
        sp.add_argument("--protocol", default=None, help="default | leave_last")
        sp.add_argument("--set", dest="protocol_set", action="append", metavar="KEY=VALUE",
                        help="protocol option, e.g. --set min_poi_checkins=5 (repeatable)")
        sp.add_argument("--force-reload", action="store_true", help="rebuild the processed cache")

    data = sub.add_parser("data", help="prepare, inspect and check data").add_subparsers(dest="data_cmd", required=True)
    sp = data.add_parser("prepare", help="load, validate, split and cache a dataset")
    data_args(sp)
    sp.set_defaults(func=cmd_data_prepare)
    sp = data.add_parser("stats", help="table of users, POIs, check-ins, trajectories and samples per split")
    data_args(sp)
    sp.set_defaults(func=cmd_data_stats)
    sp = data.add_parser("check", help="validate a raw file and report problems by file:line:field")
    sp.add_argument("file")
    sp.add_argument("--on-bad-row", choices=["raise", "skip"], default="skip")
    sp.set_defaults(func=cmd_data_check)

    graph = sub.add_parser("graph", help="graph statistics and maps").add_subparsers(dest="graph_cmd", required=True)
    sp = graph.add_parser("stats", help="node/edge counts, degrees, components (training-period graph)")
    data_args(sp)
    sp.set_defaults(func=cmd_graph_stats)
    sp = graph.add_parser("plot", help="PNG map of POIs by category or region")
    data_args(sp)
    sp.add_argument("--out", default="pois.png")
    sp.add_argument("--color-by", choices=["category", "region"], default="category")
    sp.set_defaults(func=cmd_graph_plot)

    sp = sub.add_parser("train", help="train one model from a YAML config + key=value overrides")
    sp.add_argument("--config", default=None, help="YAML file holding deltas from the defaults")
    sp.add_argument("--resume", action="store_true", help="continue the run in the same output folder")
    sp.add_argument("--seeds", type=int, nargs="+", default=None, help="one run per seed; mean ± std reported")
    sp.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. model=lstm train.lr=1e-3")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("eval", help="evaluate a finished run's best checkpoint")
    sp.add_argument("--run", required=True, help="results/<run> folder")
    sp.add_argument("--part", default="test", choices=["val", "test"])
    sp.set_defaults(func=cmd_eval)

    sp = sub.add_parser("compare", help="paired bootstrap CI of run A minus run B on the same samples")
    sp.add_argument("run_a")
    sp.add_argument("run_b")
    sp.add_argument("--part", default="test", choices=["val", "test"])
    sp.add_argument("--n-boot", type=int, default=1000)
    sp.set_defaults(func=cmd_compare)

    sp = sub.add_parser("reproduce", help="run a results table's models over seeds; write table.md/csv")
    sp.add_argument("table", help="table name (nyc) or a folder holding table.yaml + published.yaml")
    sp.add_argument("--preset", default="full", help="fast | full [full]")
    sp.add_argument("--seeds", type=int, nargs="+", default=None)
    sp.add_argument("--models", nargs="+", default=None, help="subset of the table's models")
    sp.add_argument("--out", default=None, help="output folder [results/reproduce_<table>_<preset>]")
    sp.add_argument("--resume", action="store_true",
                    help="reuse finished runs in the output folder (same config); continue unfinished ones")
    sp.add_argument("--jobs", type=int, default=1, help="train runs in this many processes, cores shared [1]")
    sp.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="applied to every model's config")
    sp.set_defaults(func=cmd_reproduce)
    sp = sub.add_parser("ablate", help="the full STGNN and one-switch variants (experiments/ablation/)")
    sp.add_argument("--preset", default="full", help="fast | cpu | full [full]")
    sp.add_argument("--seeds", type=int, nargs="+", default=None)
    sp.add_argument("--models", nargs="+", default=None, help="subset of the variants")
    sp.add_argument("--out", default=None)
    sp.add_argument("--resume", action="store_true", help="reuse finished runs in the output folder")
    sp.add_argument("--jobs", type=int, default=1, help="train runs in this many processes, cores shared [1]")
    sp.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    sp.set_defaults(func=cmd_reproduce, table="ablation")

    # --- serving (stgnn/serve/commands.py): `stgnn serve`, `stgnn replay` -----------------------
    from stgnn.serve.commands import add_parsers as add_serve_parsers

    add_serve_parsers(sub)
    # --- end serving ----------------------------------------------------------------------------
    return p


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse, letting ``KEY=VALUE`` overrides follow options too (``reproduce nyc --preset full
    train.lr=1e-3``): argparse alone gives them up once the table name has been read."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any(e.startswith("-") or "=" not in e for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(args.overrides or []) + extra
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    from stgnn.data.schema import DataError

    try:
        return int(args.func(args) or 0)
    except (DataError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
