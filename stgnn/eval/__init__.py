"""Evaluation: tie-aware full-ranking metrics, model evaluation, paired significance."""
from stgnn.eval.metrics import TABLE_METRICS, metrics_from_ranks, per_sample, ranks
from stgnn.eval.significance import mean_std, paired_bootstrap

__all__ = ["TABLE_METRICS", "metrics_from_ranks", "per_sample", "ranks", "mean_std", "paired_bootstrap"]
