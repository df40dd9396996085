"""Config checks before any data work (stgnn.preflight), against the one registry."""
from __future__ import annotations

import pytest

from stgnn.config import ConfigError
from stgnn.preflight import check_model, check_model_kwargs, check_protocol
from stgnn.registry import MODELS


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_resolves(name):
    assert check_model(name).__name__


def test_builder_options_and_constructor_keywords_are_model_kwargs():
    cls = check_model("stgnn")
    check_model_kwargs(cls, {"text_model": "all-MiniLM-L6-v2", "graph_layers": 1, "graph": "static"})
    with pytest.raises(ConfigError, match="model_kwargs.bogus"):
        check_model_kwargs(cls, {"bogus": 1})
    with pytest.raises(ConfigError, match="model_kwargs.graph_layers"):
        check_model_kwargs(cls, {"graph_layers": "two"})


def test_protocol_reads_the_old_target_time_name_as_its_alias():
    check_protocol({"allow_target_time": False, "history": "all_past"})
    check_protocol({"target_time": "hidden"})
    with pytest.raises(ConfigError, match="allow_target_time"):
        check_protocol({"allow_target_time": "yes"})
    with pytest.raises(ConfigError, match="allow_target_time"):
        check_protocol({"allow_target_time": True, "target_time": "hidden"})
    with pytest.raises(ConfigError, match="protocol.bogus"):
        check_protocol({"bogus": 1})
