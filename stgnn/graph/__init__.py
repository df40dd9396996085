"""Graphs of a Split: the heterogeneous graph, time snapshots, temporal neighbor sampling, stats."""
from stgnn.graph.hetero import build_hetero_graph, checkin_mask, static_parts
from stgnn.graph.sampling import TemporalNeighborSampler
from stgnn.graph.snapshots import make_snapshots, to_temporal_signal

__all__ = ["build_hetero_graph", "checkin_mask", "static_parts", "TemporalNeighborSampler",
           "make_snapshots", "to_temporal_signal"]
