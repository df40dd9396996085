import math

import numpy as np
import pytest

from stgnn.eval.significance import mean_std, paired_bootstrap


def test_identical_models_degenerate_ci():
    r = np.random.default_rng(0).integers(1, 100, size=300)
    out = paired_bootstrap(r, r.copy(), n_boot=200)
    for m in ("Acc@1", "MRR"):
        assert out[m]["diff"] == 0.0
        assert out[m]["lo"] == 0.0 and out[m]["hi"] == 0.0
        assert out[m]["p"] == 1.0


def test_clearly_better_model_excludes_zero():
    rng = np.random.default_rng(1)
    b = rng.integers(1, 50, size=500)
    a = np.where(rng.random(500) < 0.4, 1, b)  # A puts the target first 40% of the time
    out = paired_bootstrap(a, b, n_boot=1000, seed=3)
    assert out["Acc@1"]["lo"] > 0 and out["MRR"]["lo"] > 0
    assert out["Acc@1"]["p"] == 0.0
    assert out["Acc@1"]["a"] - out["Acc@1"]["b"] == pytest.approx(out["Acc@1"]["diff"])
    assert out["Acc@1"]["lo"] <= out["Acc@1"]["diff"] <= out["Acc@1"]["hi"]
    # reversed comparison mirrors the interval
    rev = paired_bootstrap(b, a, n_boot=1000, seed=3)
    assert rev["MRR"]["hi"] == pytest.approx(-out["MRR"]["lo"])


def test_seeded_and_chunk_independent():
    rng = np.random.default_rng(2)
    a, b = rng.integers(1, 20, 200), rng.integers(1, 20, 200)
    x = paired_bootstrap(a, b, n_boot=300, seed=7)
    y = paired_bootstrap(a, b, n_boot=300, seed=7, chunk=200 * 7)  # same draws, smaller blocks
    assert x == y
    z = paired_bootstrap(a, b, n_boot=300, seed=8)
    assert z["MRR"]["lo"] != x["MRR"]["lo"]


def test_mismatched_samples_raise():
    with pytest.raises(ValueError, match="same samples"):
        paired_bootstrap(np.ones(3), np.ones(4))


def test_mean_std_sample_std():
    m, s = mean_std([0.2, 0.4, 0.6])
    assert m == pytest.approx(0.4)
    assert s == pytest.approx(0.2)  # ddof=1: sqrt((0.04 + 0 + 0.04) / 2)
    m1, s1 = mean_std([0.3])
    assert m1 == 0.3 and math.isnan(s1)
