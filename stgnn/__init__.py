"""stgnn: LLM-enhanced spatiotemporal recommendation (next-POI) with temporal heterogeneous GNNs."""
__version__ = "0.1.0"
