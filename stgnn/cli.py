"""``stgnn ...`` / ``python -m stgnn ...``: data, graph, train, eval, reproduce.

The CLI only parses arguments and calls library functions; dotted ``key=value`` overrides are
parsed by :func:`stgnn.config.apply_overrides`, nowhere else.

Exit codes: 0 success; 1 ``data check`` found (and skipped) bad rows; 2 the input was refused (a
bad file, config, cache, checkpoint or device: one line naming the file and line, field or key,
and what to do); 3 an unexpected error, i.e. a bug in stgnn (printed with its traceback).
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_BAD_ROWS, EXIT_REFUSED, EXIT_BUG = 0, 1, 2, 3
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def _protocol(args: argparse.Namespace):
    from stgnn.config import ConfigError, apply_overrides
    from stgnn.data.protocol import ProtocolConfig

    overrides = list(getattr(args, "protocol_set", None) or [])
    if getattr(args, "protocol", None):
        overrides.insert(0, f"protocol={args.protocol}")
    try:
        return apply_overrides(ProtocolConfig(), overrides)
    except ConfigError as e:
        raise ConfigError(f"--set: {e}") from None


def _loader_kw(args: argparse.Namespace) -> dict[str, Any]:
    """Loader options given on the command line (only those given: the rest keep the defaults,
    or what ``data prepare`` remembered for the file)."""
    kw: dict[str, Any] = {}
    if getattr(args, "columns", None):
        from stgnn.data.sources.csv import parse_columns

        kw["columns"] = parse_columns(",".join(args.columns))
    for name in ("time_unit", "time_window", "on_bad_row", "encoding"):
        if getattr(args, name, None) is not None:
            kw[name] = args.time_window.split(",") if name == "time_window" else getattr(args, name)
    return kw


def _prepare(args: argparse.Namespace):
    from stgnn.data.dataset import prepare

    return prepare(args.source, _protocol(args), root=Path(args.root), force_reload=args.force_reload,
                   **_loader_kw(args))


def _print_loading(split) -> None:
    """What loading dropped or noted (kept in the split's stats, so cached splits report it too)."""
    rep = (split.stats.get("loading") or {}).get("report") or {}
    bad = rep.get("bad_rows") or {}
    if bad.get("count"):
        kinds = ", ".join(f"{k}: {v:,}" for k, v in sorted(bad.get("by_field", {}).items(), key=lambda kv: -kv[1]))
        print(f"bad rows skipped: {bad['count']:,} ({kinds}), e.g.:")
        for ex in bad.get("examples", []):
            print(f"  {ex}")
    for note in rep.get("notes", []):
        print(f"note: {note}")


def cmd_data_prepare(args: argparse.Namespace) -> int:
    split = _prepare(args)
    print(split)
    _print_loading(split)
    return EXIT_OK


def cmd_data_stats(args: argparse.Namespace) -> int:
    from stgnn.data.stats import format_stats

    split = _prepare(args)
    print(format_stats(split))
    _print_loading(split)
    return EXIT_OK


def cmd_data_check(args: argparse.Namespace) -> int:
    """Exit 0 for a clean file, 1 when bad rows were found (and skipped: the table below is what
    the rest would read), 2 when the file is refused as a whole."""
    from stgnn.data.sources import load_source

    table = load_source(args.file, **{"on_bad_row": "skip", **_loader_kw(args)})
    print(table)
    rep = table.report
    print(f"rows read: {rep.rows_read:,}; duplicates dropped: {rep.duplicates_dropped:,}; "
          f"POIs given one canonical coordinate: {rep.pois_recoordinated:,}")
    print(rep.bad_rows)
    for note in rep.notes:
        print(f"note: {note}")
    if rep.bad_rows.count:
        print(f"CHECK FAILED: {rep.bad_rows.count:,} bad rows ({rep.bad_rows.kinds()})", file=sys.stderr)
        return EXIT_BAD_ROWS
    return EXIT_OK


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


def check_resumable(cfg) -> None:
    """``stgnn train --resume`` continues a run that exists: refuse a name with no run at all.

    A run exists when ``output_dir/name`` holds a ``seed_*`` folder with ``last.pt`` or
    ``metrics.json``; its seeds without one then start fresh. (``reproduce --resume`` differs on
    purpose: it fills a table, so it starts whatever rows are missing.)
    """
    from stgnn.config import ConfigError

    run = Path(cfg.output_dir) / cfg.name
    if any(run.glob("seed_*/last.pt")) or any(run.glob("seed_*/metrics.json")):
        return
    root = Path(cfg.output_dir)
    known = sorted(p.parent.parent.name for p in root.glob("*/seed_*/metrics.json")) if root.is_dir() else []
    raise ConfigError(f"--resume: no run named {cfg.name!r} under {root}/ (nothing in {run}/seed_*/ to "
                      f"continue); runs there: {sorted(set(known)) or 'none'}. Check name=, or drop --resume "
                      "to start it")


def cmd_train(args: argparse.Namespace) -> int:
    from stgnn.config import load_config
    from stgnn.preflight import check_experiment
    from stgnn.recipes import train_from_config
    from stgnn.utils.io import dumps_json

    overrides = list(args.overrides)
    if args.seeds:
        overrides.append(f"seeds=[{','.join(str(x) for x in args.seeds)}]")
    cfg = load_config(args.config, overrides)
    check_experiment(cfg)  # model_kwargs, protocol, device, dataset: before any data work
    if args.resume:
        check_resumable(cfg)
    result = train_from_config(args.config, overrides, resume=args.resume)
    from stgnn.train import distributed

    if distributed.is_main():  # under torchrun every rank gets the result; one prints it
        print(dumps_json(result, indent=2))
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from stgnn.recipes import evaluate_run
    from stgnn.utils.io import dumps_json

    if not (Path(args.run) / "config.yaml").is_file():
        from stgnn.config import ConfigError

        raise ConfigError(f"--run {args.run}: no config.yaml there; give a run folder such as results/<run>/seed_0")
    result = evaluate_run(Path(args.run), part=args.part)
    print(dumps_json(result, indent=2))
    return EXIT_OK


def cmd_reproduce(args: argparse.Namespace) -> int:
    from stgnn.recipes import reproduce

    table = reproduce(args.table, preset=args.preset, seeds=args.seeds, models=args.models,
                      out=Path(args.out) if args.out else None, overrides=args.overrides,
                      resume=args.resume, jobs=args.jobs, settings=getattr(args, "settings", None))
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

    names = ", ".join(_dataset_names())

    def loader_args(sp: argparse.ArgumentParser, on_bad_row: str | None) -> None:
        sp.add_argument("--columns", action="append", metavar="KEY=COL,...",
                        help="own CSV/TSV/Parquet: which columns hold user, item, time (required) and "
                             "lat, lon, category, text, tz, e.g. user=uid,item=venue,time=ts,lat=y,lon=x; "
                             "remembered by `data prepare` for later commands")
        sp.add_argument("--time-unit", default=None, metavar="UNIT",
                        help="own tables: s | ms | iso | auto (refuses what it cannot decide) | a strftime "
                             "format such as '%%d/%%m/%%Y %%H:%%M' [auto]")
        sp.add_argument("--time-window", default=None, metavar="START,END",
                        help="plausible years or ISO dates of the check-ins; times outside are bad rows [2000,2100]")
        sp.add_argument("--encoding", default=None, help="force a text encoding [UTF-8, or Latin-1 for a Latin-1 file]")
        sp.add_argument("--on-bad-row", choices=["raise", "skip"], default=on_bad_row,
                        help=f"refuse the file at its first bad row, or skip bad rows and count them by kind "
                             f"[{on_bad_row or 'raise'}]")

    def data_args(sp: argparse.ArgumentParser, positional: bool = True) -> None:
        if positional:
            sp.add_argument("source", nargs="?", default="nyc",
                            help=f"dataset name ({names}) or a file path [nyc]")
        sp.add_argument("--root", default=os.environ.get("STGNN_ROOT", "data"),
                        help="folder holding raw/ and processed/ [data]")
        sp.add_argument("--protocol", default=None, help="time_cut | leave_last (a pre-split set is always files)")
        sp.add_argument("--set", dest="protocol_set", action="append", metavar="KEY=VALUE",
                        help="protocol option, e.g. --set min_poi_checkins=5 (repeatable)")
        sp.add_argument("--force-reload", action="store_true", help="rebuild the processed cache")
        loader_args(sp, None)

    data = sub.add_parser("data", help="prepare, inspect and check data").add_subparsers(dest="data_cmd", required=True)
    sp = data.add_parser("prepare", help="load, validate, split and cache a dataset")
    data_args(sp)
    sp.set_defaults(func=cmd_data_prepare)
    sp = data.add_parser("stats", help="table of users, POIs, check-ins, trajectories and samples per split")
    data_args(sp)
    sp.set_defaults(func=cmd_data_stats)
    sp = data.add_parser("check", help="validate a raw file and report problems by file:line:field; "
                                       "exit 1 if it has bad rows, 2 if it is refused")
    sp.add_argument("file", help=f"a file path, or a dataset name ({names})")
    loader_args(sp, "skip")
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
    sp.add_argument("--settings", nargs="+", default=None, metavar="NAME",
                    help="only these information settings of the table (default, realtime) [all the preset runs]")
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


def _dataset_names() -> tuple[str, ...]:
    from stgnn.data.sources import dataset_names

    return dataset_names()


def _raised_in_stgnn(e: BaseException) -> bool:
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR)


def expected_error(e: BaseException) -> bool:
    """Is ``e`` a refusal of the user's input (one line, exit 2) rather than a bug (traceback)?

    Expected: stgnn's input errors (bad data, config, split, cache, checkpoint, non-finite loss),
    OS errors about files, and ``ValueError``/``RuntimeError``/``LookupError`` raised by stgnn's own
    code with a message, unless they wrap (``raise ... from``) an unexpected one. The same types
    raised inside a library (numpy, torch...) are bugs of ours: they carry no advice for the user.
    """
    from stgnn.config import ConfigError
    from stgnn.data.dataset import CacheError
    from stgnn.data.usable import SplitError
    from stgnn.data.schema import DataError
    from stgnn.train.checkpoint import CheckpointError

    loop = sys.modules.get("stgnn.train.loop")
    known = (DataError, ConfigError, SplitError, CacheError, CheckpointError,
             *((loop.NonFiniteLossError,) if loop is not None else ()))
    if isinstance(e, known) or isinstance(e, OSError):
        return True
    if isinstance(e, (ValueError, RuntimeError, LookupError)) and _raised_in_stgnn(e) and str(e):
        return e.__cause__ is None or expected_error(e.__cause__)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; expected failures print one line and return 2, bugs a traceback and 3."""
    args = parse(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("stgnn: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's one error boundary
        if expected_error(e):
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
            return EXIT_REFUSED
        print(f"stgnn: this is a bug (an unexpected {type(e).__name__}); please report it with the traceback "
              "below and the command you ran:", file=sys.stderr)
        traceback.print_exc()
        return EXIT_BUG
    finally:
        _leave_process_group()


def _leave_process_group() -> None:
    """Under torchrun, leave the process group before the interpreter exits. Left to exit-time
    destruction, Gloo's threads are sometimes still joinable and the rank dies with "terminate
    called without an active exception" (SIGABRT) after its work is done and written."""
    if "stgnn.train.distributed" in sys.modules:  # imported only by commands that train
        from stgnn.train import distributed

        distributed.cleanup()


if __name__ == "__main__":
    sys.exit(main())
