"""Training: the fit loop, checkpoints, seeding and run outputs."""
from stgnn.train.history import History
from stgnn.train.loop import NonFiniteLossError, fit, resolve_device
from stgnn.train.logging import write_run
from stgnn.train.seed import rng_state, seed_everything, set_rng_state

__all__ = ["History", "NonFiniteLossError", "fit", "resolve_device", "write_run", "rng_state",
           "seed_everything", "set_rng_state"]
