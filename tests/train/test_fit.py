import importlib
import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from stgnn.config import ExperimentConfig, TrainConfig
from stgnn.data.batch import SampleLoader
from stgnn.eval.evaluate import evaluate
from stgnn.inputs import build_inputs
from stgnn.models.base import Recommender
from stgnn.train import NonFiniteLossError, fit, write_run
from stgnn.train.checkpoint import load_checkpoint


class TinyRec(Recommender):
    """user + last-POI embeddings -> dropout -> linear over POIs (dropout makes the RNG matter)."""

    def __init__(self, num_users: int, num_pois: int, dim: int = 16) -> None:
        super().__init__(num_users, num_pois)
        self.user_emb = nn.Embedding(num_users, dim)
        self.poi_emb = nn.Embedding(num_pois, dim)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(dim, num_pois)
        self.steps = 0
        self.prepare_calls = 0

    def prepare(self, inputs) -> None:
        self.prepare_calls += 1

    def score(self, batch):
        h = self.user_emb(batch.user) + self.poi_emb(batch.last_poi)  # (B, D)
        return self.out(self.drop(h))  # (B, P)

    def loss(self, batch):
        self.steps += 1
        return super().loss(batch)


class Killed(Exception):
    pass


class KilledAt(TinyRec):
    """Dies (like a killed process) at the ``at``-th training step."""

    def __init__(self, *a, at: int, **kw) -> None:
        super().__init__(*a, **kw)
        self.at = at

    def loss(self, batch):
        if self.steps + 1 == self.at:
            raise Killed()
        return super().loss(batch)


class NaNAt(TinyRec):
    def __init__(self, *a, at: int, **kw) -> None:
        super().__init__(*a, **kw)
        self.at = at

    def loss(self, batch):
        value = super().loss(batch)
        if self.steps == self.at:
            self.bad_index = batch.index.clone()
            return value * float("nan")
        return value


class TrainPop(Recommender):
    trainable = False

    def prepare(self, inputs) -> None:
        self.register_buffer("counts", inputs.stats.poi_count.float())

    def score(self, batch):
        return self.counts.expand(len(batch), -1)


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=4, batch_size=256, eval_batch_size=512, lr=0.01, patience=0, schedule="cosine",
                device="cpu", seed=0, max_len=8, hist_len=0, progress=False, tensorboard=False, num_threads=1)
    base.update(kw)
    return TrainConfig(**base)


def make(split, cls=TinyRec, init_seed=0, **kw):
    torch.manual_seed(init_seed)
    return cls(split.num_users, split.num_pois, **kw)


def steps_per_epoch(split, c):
    return (len(split.samples["train"]) + c.batch_size - 1) // c.batch_size


def no_time(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_fit_keeps_best_epoch_and_learns(synthetic_split):
    c = cfg()
    m = make(synthetic_split)
    h = fit(m, synthetic_split, c)
    assert m.prepare_calls == 0   # fit trains what it is given; it never rebuilds a model's inputs
    assert [r["epoch"] for r in h.rows] == [1, 2, 3, 4]
    mrr = [r["val_MRR"] for r in h.rows]
    assert h.best_epoch == int(np.argmax(mrr)) + 1 and h.best_score == max(mrr)
    # the returned val metrics are those of the reloaded best weights
    assert h.val_metrics["MRR"] == pytest.approx(h.rows[h.best_epoch - 1]["val_MRR"], abs=0)
    assert len(h.test_ranks) == len(synthetic_split.samples["test"])
    assert np.array_equal(h.test_index, synthetic_split.samples["test"])
    # cosine schedule: lr of epoch e is 0.01 * (1 + cos(pi (e-1) / 4)) / 2
    assert [r["lr"] for r in h.rows] == pytest.approx([0.01, 0.01 * (1 + np.cos(np.pi / 4)) / 2, 0.005,
                                                       0.01 * (1 + np.cos(3 * np.pi / 4)) / 2])
    assert h.rows[-1]["train_loss"] < h.rows[0]["train_loss"]
    # planted routines: the trained model beats uniform guessing (MRR of a random ranking ~ H_P / P)
    chance = np.sum(1 / np.arange(1, synthetic_split.num_pois + 1)) / synthetic_split.num_pois
    assert h.test_metrics["MRR"] > 3 * chance


def test_same_seed_same_metrics(synthetic_split):
    c = cfg(epochs=2)
    a = fit(make(synthetic_split), synthetic_split, c)
    b = fit(make(synthetic_split), synthetic_split, c)
    assert a.test_metrics == b.test_metrics and a.val_metrics == b.val_metrics
    assert no_time(a.rows) == no_time(b.rows)
    assert np.array_equal(a.test_ranks, b.test_ranks)
    d = fit(make(synthetic_split), synthetic_split, cfg(epochs=2, seed=1))  # other shuffle/dropout
    assert no_time(d.rows) != no_time(a.rows)


def test_resume_equals_uninterrupted(synthetic_split, tmp_path):
    c = cfg(epochs=4, tensorboard=True)
    straight = make(synthetic_split)
    ha = fit(straight, synthetic_split, c, tmp_path / "a")

    spe = steps_per_epoch(synthetic_split, c)
    doomed = make(synthetic_split, KilledAt, at=2 * spe + 3)  # dies inside epoch 3
    with pytest.raises(Killed):
        fit(doomed, synthetic_split, c, tmp_path / "b")
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 2
    fresh = make(synthetic_split, init_seed=123)  # a new process: other initial weights
    hb = fit(fresh, synthetic_split, c, tmp_path / "b", resume=True)

    assert hb.test_metrics == ha.test_metrics and hb.val_metrics == ha.val_metrics
    assert no_time(hb.rows) == no_time(ha.rows)
    assert hb.best_epoch == ha.best_epoch
    assert np.array_equal(hb.test_ranks, ha.test_ranks)
    for (ka, pa), (kb, pb) in zip(straight.state_dict().items(), fresh.state_dict().items()):
        assert ka == kb and torch.equal(pa, pb), ka
    last_a, last_b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for k in last_a["model"]:
        assert torch.equal(last_a["model"][k], last_b["model"][k])
    assert (tmp_path / "b" / "curves.csv").read_text().count("\n") == 5  # header + 4 epochs
    assert any((tmp_path / "b" / "tb").iterdir())


def test_kill_between_last_and_best_checkpoint(synthetic_split, tmp_path, monkeypatch):
    c = cfg(epochs=3)
    ha = fit(make(synthetic_split), synthetic_split, c, tmp_path / "a")
    assert ha.best_epoch >= 2  # so a stale best.pt (an earlier epoch) exists to be caught
    fit_mod = importlib.import_module("stgnn.train.loop")

    real_save = fit_mod.save_checkpoint

    def dying_save(path, state):
        if path.name == "best.pt" and state["epoch"] == ha.best_epoch:
            raise Killed()
        real_save(path, state)

    monkeypatch.setattr(fit_mod, "save_checkpoint", dying_save)
    with pytest.raises(Killed):
        fit(make(synthetic_split), synthetic_split, c, tmp_path / "b")
    monkeypatch.setattr(fit_mod, "save_checkpoint", real_save)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == ha.best_epoch
    assert load_checkpoint(tmp_path / "b" / "best.pt")["epoch"] < ha.best_epoch  # best.pt is stale
    hb = fit(make(synthetic_split, init_seed=9), synthetic_split, c, tmp_path / "b", resume=True)
    assert hb.test_metrics == ha.test_metrics and hb.best_epoch == ha.best_epoch
    assert no_time(hb.rows) == no_time(ha.rows)


def test_resume_of_finished_run_only_evaluates(synthetic_split, tmp_path):
    c = cfg(epochs=2)
    h1 = fit(make(synthetic_split), synthetic_split, c, tmp_path)
    m = make(synthetic_split, init_seed=5)
    h2 = fit(m, synthetic_split, c, tmp_path, resume=True)
    assert m.steps == 0 and h2.test_metrics == h1.test_metrics and len(h2.rows) == 2


def test_nan_loss_stops_and_keeps_last_good_checkpoint(synthetic_split, tmp_path):
    c = cfg(epochs=3)
    spe = steps_per_epoch(synthetic_split, c)
    m = make(synthetic_split, NaNAt, at=spe + 2)  # epoch 2, 0-based step 1
    with pytest.raises(NonFiniteLossError, match="at epoch 2, step 1") as e:
        fit(m, synthetic_split, c, tmp_path / "nan")
    assert torch.equal(torch.as_tensor(e.value.sample_indices), m.bad_index)
    assert str(int(m.bad_index[0])) in str(e.value)
    last = load_checkpoint(tmp_path / "nan" / "last.pt")
    assert last["epoch"] == 1
    # last.pt holds exactly the state after epoch 1 of a run of the same config that was not hit
    ref = make(synthetic_split, KilledAt, at=spe + 1)
    with pytest.raises(Killed):
        fit(ref, synthetic_split, c, tmp_path / "ref")
    ref_last = load_checkpoint(tmp_path / "ref" / "last.pt")
    assert ref_last["epoch"] == 1
    for k, v in ref_last["model"].items():
        assert torch.equal(last["model"][k], v), k
    assert not (tmp_path / "nan" / "curves.csv").read_text().count("\n2,")  # no epoch-2 row


def test_early_stopping(synthetic_split):
    c = cfg(epochs=10, lr=0.0, weight_decay=0.0, patience=2, schedule="none")
    m = make(synthetic_split)
    h = fit(m, synthetic_split, c)
    # nothing changes with lr 0: epoch 1 is best, epochs 2 and 3 do not improve -> stop after 3
    assert [r["epoch"] for r in h.rows] == [1, 2, 3]
    assert h.best_epoch == 1 and h.stopped_early


def test_non_trainable_model_is_only_evaluated(synthetic_split):
    m = TrainPop.from_inputs(build_inputs(synthetic_split))
    h = fit(m, synthetic_split, cfg())
    assert h.rows == [] and h.best_epoch == 0
    loader = SampleLoader(synthetic_split, "test", 64, max_len=8, hist_len=0)
    metrics, ranks = evaluate(m, loader)
    assert h.test_metrics == metrics and np.array_equal(h.test_ranks, ranks)
    # popularity ranks by hand for the first test sample (pessimistic ties)
    counts = m.counts.numpy()
    t = synthetic_split.poi[synthetic_split.samples["test"][0]]
    assert ranks[0] == int((counts >= counts[t]).sum())


def test_bad_monitor_and_shuffled_eval(synthetic_split):
    with pytest.raises(ValueError, match="train.monitor='AUC'"):
        fit(make(synthetic_split), synthetic_split, cfg(monitor="AUC"))
    with pytest.raises(ValueError, match="shuffle=False"):
        evaluate(make(synthetic_split), SampleLoader(synthetic_split, "val", 8, shuffle=True))


def test_write_run(synthetic_split, tmp_path):
    exp = ExperimentConfig(dataset="synthetic", train=cfg(epochs=2))
    h = fit(make(synthetic_split), synthetic_split, exp.train, tmp_path)
    write_run(tmp_path, exp, h, {"device": "cpu", "torch": torch.__version__})
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test"]["MRR"] == pytest.approx(h.test_metrics["MRR"])
    assert metrics["best_epoch"] == h.best_epoch and metrics["split_fingerprint"] == synthetic_split.fingerprint()
    assert metrics["protocol"]["min_poi_checkins"] == 3
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]["epochs"] == 2
    assert json.loads((tmp_path / "env.json").read_text())["device"] == "cpu"
    with np.load(tmp_path / "ranks.npz") as z:
        assert np.array_equal(z["test_ranks"], h.test_ranks)
    assert {p.name for p in tmp_path.iterdir()} >= {"best.pt", "last.pt", "curves.csv"}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


class TimeSpy(TinyRec):
    """Records whether the batches it scores carry the target time."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.seen: set[bool] = set()

    def score(self, batch):
        self.seen.add(batch.target_time_known)
        return super().score(batch)


class TimeReader(TimeSpy):
    uses_target_time = True


@pytest.mark.parametrize("target_time", ["known", "hidden"])
def test_the_loader_decides_who_gets_the_target_time(synthetic_split, target_time):
    import dataclasses

    split = dataclasses.replace(synthetic_split, protocol={**synthetic_split.protocol, "target_time": target_time})
    plain, reader = make(split, TimeSpy), make(split, TimeReader)
    hp = fit(plain, split, cfg(epochs=1))
    hr = fit(reader, split, cfg(epochs=1))
    assert plain.seen == {False}                             # never, whatever the protocol says
    assert reader.seen == {target_time == "known"}
    assert hp.summary()["information"] == {"history": "train_only", "target_time": target_time,
                                           "target_time_read": False}
    assert hr.summary()["information"]["target_time_read"] is (target_time == "known")
    assert hr.summary()["dataset"] == split.name
