"""seed_everything: seeds every generator and switches deterministic kernels on and off."""
from __future__ import annotations

import random

import numpy as np
import torch

from stgnn.train.seed import seed_everything


def test_same_seed_same_draws_and_a_separate_shuffle_generator():
    g1 = seed_everything(5, deterministic=False)
    a = (random.random(), np.random.rand(), torch.rand(3), torch.rand(3, generator=g1))
    g2 = seed_everything(5, deterministic=False)
    b = (random.random(), np.random.rand(), torch.rand(3), torch.rand(3, generator=g2))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])


def test_deterministic_flag_sets_torch_deterministic_algorithms():
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()  # CUDA scatter warns, not fails
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        seed_everything(0, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
