"""Recipes: build from config, call the library, write results. The CLI calls these.

* :mod:`stgnn.recipes.runs` — one run (:func:`run_one`), every seed of a config
  (:func:`run_experiment`, ``stgnn train``), re-scoring (:func:`evaluate_run`, ``stgnn eval``),
  paired comparisons (:func:`compare_runs`, ``stgnn compare``), runs in parallel processes.
* :mod:`stgnn.recipes.tables` — :func:`reproduce` (``stgnn reproduce nyc``, ``stgnn ablate``): a
  table's models over seeds → ``table.md``, ``table.csv``, ``table.json``, with the published
  numbers of the same dataset in adjacent rows, each cited.
* :mod:`stgnn.recipes.report` — the Markdown/CSV rendering.

Tables are built from the ``metrics.json`` files the runs wrote, never typed by hand.
"""
from stgnn.recipes.report import format_table, table_csv
from stgnn.recipes.runs import (cached_splits, clear_caches, compare_runs, evaluate_run, load_split, run_experiment, run_inputs,
                                run_one, run_parallel, train_from_config, write_slices)
from stgnn.recipes.tables import EXPERIMENTS, checked_overrides, reproduce, row_config, table_spec

__all__ = ["EXPERIMENTS", "cached_splits", "checked_overrides", "clear_caches", "compare_runs", "evaluate_run",
           "format_table", "load_split", "reproduce", "row_config", "run_experiment", "run_inputs", "run_one", "run_parallel",
           "table_csv", "table_spec", "train_from_config", "write_slices"]
