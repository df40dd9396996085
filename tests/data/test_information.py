"""Information settings: named options, the legacy alias, and a loader that enforces them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stgnn.data.batch import Batch, SampleLoader
from stgnn.data.information import InformationSetting
from stgnn.data.protocol import ProtocolConfig


def test_from_protocol_defaults_and_legacy_alias():
    assert InformationSetting.from_protocol({}) == InformationSetting("train_only", "known")
    assert InformationSetting.from_protocol({"history": "all_past", "target_time": "hidden"}) == \
        InformationSetting("all_past", "hidden")
    # results and configs written before target_time carry the boolean
    assert InformationSetting.from_protocol({"allow_target_time": False}).target_time == "hidden"
    assert InformationSetting.from_protocol({"allow_target_time": True}).target_time == "known"
    with pytest.raises(ValueError, match="disagree"):
        InformationSetting.from_protocol({"allow_target_time": True, "target_time": "hidden"})
    with pytest.raises(ValueError, match="target_time='sometimes'"):
        InformationSetting(target_time="sometimes")
    assert str(InformationSetting()) == "history=train_only, target_time=known"


def test_protocol_config_reads_the_old_key():
    assert ProtocolConfig().target_time == "known" and "allow_target_time" not in ProtocolConfig().to_dict()
    assert ProtocolConfig.from_dict({"allow_target_time": False}).target_time == "hidden"
    assert ProtocolConfig.from_dict({"allow_target_time": True, "target_time": "known"}).target_time == "known"
    with pytest.raises(ValueError, match="keep only target_time"):
        ProtocolConfig.from_dict({"allow_target_time": False, "target_time": "known"})
    with pytest.raises(ValueError, match="target_time='maybe'"):
        ProtocolConfig(target_time="maybe")


def test_the_target_time_reaches_only_models_that_declare_it():
    known = InformationSetting("all_past", "known")
    assert known.for_model(uses_target_time=True) == known
    assert known.for_model(uses_target_time=False) == InformationSetting("all_past", "hidden")
    hidden = InformationSetting("train_only", "hidden")
    assert hidden.for_model(uses_target_time=True) == hidden


def test_a_hidden_batch_carries_no_target_time(synthetic_split):
    targets = synthetic_split.samples["test"][:6]
    known = SampleLoader(synthetic_split, "test", target_time="known").make_batch(targets)
    hidden = SampleLoader(synthetic_split, "test", target_time="hidden").make_batch(targets)
    assert known.target_time_known and hidden.target_time_known is False
    assert np.array_equal(known.target_ts.numpy(), synthetic_split.ts[targets])
    assert np.array_equal(known.target_tz.numpy(), synthetic_split.tz_offset_min[targets])
    assert hidden.target_ts is None and hidden.target_tz is None
    # nothing else in the batch holds the target's time: every time field predates it
    for name in ("ts", "hist_ts"):
        assert (getattr(hidden, name) < known.target_ts[:, None]).all()
    moved = hidden.to("cpu")
    assert moved.target_ts is None and not moved.target_time_known
    assert torch.equal(hidden.target_poi, known.target_poi)  # the label is not the time


def test_query_time_is_the_target_or_the_last_checkin(synthetic_split):
    targets = synthetic_split.samples["val"][:5]
    known = SampleLoader(synthetic_split, "val").make_batch(targets)
    hidden = SampleLoader(synthetic_split, "val", target_time="hidden").make_batch(targets)
    assert torch.equal(known.query_time()[0], known.target_ts)
    last = (hidden.length - 1)[:, None]
    assert torch.equal(hidden.query_time()[0], hidden.ts.gather(1, last)[:, 0])
    assert torch.equal(hidden.query_time()[1], hidden.tz.gather(1, last)[:, 0])


def test_batch_fields_must_agree_with_the_flag(synthetic_split):
    b = SampleLoader(synthetic_split, "test", target_time="hidden").make_batch(synthetic_split.samples["test"][:2])
    fields = {k: getattr(b, k) for k in b.__dataclass_fields__}
    with pytest.raises(ValueError, match="exactly when target_time_known"):
        Batch(**{**fields, "target_time_known": True})
    with pytest.raises(ValueError, match="target_time must be one of"):
        SampleLoader(synthetic_split, "test", target_time="zeros")
