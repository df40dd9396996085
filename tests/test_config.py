import pytest
import yaml

from stgnn.config import ConfigError, ExperimentConfig, TrainConfig, dump_config, load_config


def test_defaults_without_file():
    cfg = load_config(None, [])
    assert cfg == ExperimentConfig()
    assert cfg.train.monitor == "MRR" and cfg.seeds == [0]


def test_yaml_delta_then_overrides(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("dataset: tky\ntrain:\n  lr: 1e-3\n  epochs: 5\nprotocol:\n  min_user_checkins: 5\n")
    cfg = load_config(p, ["train.lr=0.01", "seeds=[0,1,2]", "model_kwargs.dim=64",
                          "protocol.session_gap_h=12", "train.clip_norm=null", "train.amp=bf16"])
    assert cfg.dataset == "tky"
    assert cfg.train.epochs == 5                       # from YAML
    assert cfg.train.lr == 0.01                        # override beats YAML
    assert cfg.train.batch_size == TrainConfig().batch_size  # default kept
    assert cfg.seeds == [0, 1, 2]
    assert cfg.model_kwargs == {"dim": 64}
    assert cfg.protocol == {"min_user_checkins": 5, "session_gap_h": 12}  # dicts merge key-wise
    assert cfg.train.clip_norm is None and cfg.train.amp == "bf16"


def test_yaml_float_without_dot_and_int_to_float(tmp_path):
    cfg = load_config(None, ["train.lr=1e-3", "train.weight_decay=0"])
    assert cfg.train.lr == pytest.approx(1e-3) and isinstance(cfg.train.lr, float)
    assert isinstance(cfg.train.weight_decay, float)


def test_unknown_keys_list_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.lrr'.*'train\.lr'"):
        load_config(None, ["train.lrr=1"])
    p = tmp_path / "bad.yaml"
    p.write_text("modle: lstm\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*\['modle'\].*'model'"):
        load_config(p, [])
    with pytest.raises(ConfigError, match="not a section"):
        load_config(None, ["seeds.x=1"])
    with pytest.raises(ConfigError, match=r"unknown config key 'dataset.x'.*'dataset.columns'"):
        load_config(None, ["dataset.x=1"])


def test_bad_values():
    with pytest.raises(ConfigError, match="must be an integer"):
        load_config(None, ["train.epochs=ten"])
    with pytest.raises(ConfigError, match="schedule"):
        load_config(None, ["train.schedule=linear"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.lr"])


def test_dump_roundtrip(tmp_path):
    cfg = load_config(None, ["train.lr=0.005", "seeds=[3,4]", "model=stgnn.models.foo.Bar"])
    text = dump_config(cfg)
    assert yaml.safe_load(text)["train"]["lr"] == 0.005
    p = tmp_path / "resolved.yaml"
    p.write_text(text)
    assert load_config(p, []) == cfg


def test_apply_overrides_is_the_one_parser_for_configs_and_protocols(tmp_path):
    from stgnn.config import DatasetConfig, apply_overrides
    from stgnn.data.protocol import ProtocolConfig

    cfg = apply_overrides(ExperimentConfig(), ["dataset=my.csv", "dataset.columns=user=u,item=i,time=t",
                                               "dataset.time_unit=ms", "protocol.min_poi_checkins=3"])
    assert cfg.dataset == DatasetConfig(path="my.csv", columns={"user": "u", "item": "i", "time": "t"}, time_unit="ms")
    assert hash(cfg.dataset) == hash(DatasetConfig(path="my.csv", columns="user=u,item=i,time=t", time_unit="ms"))
    p = tmp_path / "c.yaml"
    p.write_text(dump_config(cfg))
    assert load_config(p, []) == cfg  # the mapping form survives a round trip through YAML
    proto = apply_overrides(ProtocolConfig(), ["min_poi_checkins=5", "fractions=[0.7,0.2,0.1]", "traj_gap_hours=12"])
    assert (proto.min_poi_checkins, proto.fractions, proto.traj_gap_hours) == (5, (0.7, 0.2, 0.1), 12.0)
    with pytest.raises(ConfigError, match="min_poi_checkins='abc' must be an integer"):
        apply_overrides(ProtocolConfig(), ["min_poi_checkins=abc"])


def test_config_file_errors_name_the_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("train:\n  lr: [1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
