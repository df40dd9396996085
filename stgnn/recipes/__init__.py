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
from stgnn.recipes.runs import (_INPUTS, _SPLITS, compare_runs, evaluate_run, load_split, run_experiment, run_inputs,
                                run_one, run_parallel, train_from_config, write_slices)
from stgnn.recipes.tables import EXPERIMENTS, _apply_overrides, _table_spec, reproduce

__all__ = ["EXPERIMENTS", "compare_runs", "evaluate_run", "format_table", "load_split", "reproduce", "run_experiment",
           "run_inputs", "run_one", "run_parallel", "table_csv", "train_from_config", "write_slices"]
