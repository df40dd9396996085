"""Replay A/B: the stream, ranks that agree with offline all_past scoring, the paired CI, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stgnn.data.batch import SampleLoader
from stgnn.eval.metrics import ranks
from stgnn.serve.replay import format_replay, run_replay, stream


@pytest.fixture(scope="module")
def replayed(serve_runs):
    return run_replay(serve_runs["STGNN"], serve_runs["UserHistory"], progress=None, n_boot=200)


def test_stream_is_the_test_period_in_time_order(serve_runs):
    split = serve_runs["split"]
    start = int(split.cuts["val_end"])
    ev = stream(split, start, int(split.ts.max()) + 1)
    assert len(ev) == int((split.ts >= start).sum())
    assert np.all(np.diff(split.ts[ev]) >= 0)
    assert len(stream(split, start, start + 86400, limit=3)) == 3


def test_replay_ranks_agree_with_offline_all_past_scores(replayed, serve_runs, stgnn_loaded):
    """A streamed check-in that is an offline test sample gets the rank offline all_past scoring
    gives it, wherever the live gap rule draws the split's trajectory boundaries."""
    split = serve_runs["split"]
    start = replayed["start"]
    ev = np.asarray(replayed["event_index"])
    assert replayed["checkins"] == len(ev) == int((split.ts >= start).sum())
    pos = {j: i for i, j in enumerate(ev.tolist())}
    gap = split.protocol["traj_gap_hours"] * 3600
    rule = np.ones(split.num_checkins, bool)
    rule[1:] = (split.user[1:] != split.user[:-1]) | (np.diff(split.ts) > gap)
    starts = np.zeros(split.num_checkins, bool)
    starts[split.traj_ptr[:-1]] = True
    checked = 0
    loader = SampleLoader(split, split.samples["test"], history="all_past")
    with torch.inference_mode():
        for j in split.samples["test"].tolist():
            a = split.user_ptr[split.user[j]]
            live = np.arange(a, j + 1)
            live = live[split.ts[live] >= start]                        # rows the replay wrote live
            if (split.ts[a:j] == split.ts[j]).any() or not np.array_equal(rule[live], starts[live]):
                continue
            off = ranks(stgnn_loaded.model.score(loader.make_batch(np.array([j]))), torch.tensor([split.poi[j]]))
            assert replayed["ranks"]["A"][pos[j]] == int(off[0]), j
            checked += 1
    assert checked >= 0.8 * len(split.samples["test"])


def test_replay_metrics_and_paired_ci(replayed):
    from stgnn.eval.metrics import metrics_from_ranks

    for name in ("A", "B"):
        m = replayed["models"][name]
        r = np.asarray(replayed["ranks"][name])
        assert m["metrics"]["Acc@1"] == pytest.approx(float(np.mean(r == 1)))
        assert m["metrics"]["MRR"] == pytest.approx(metrics_from_ranks(r)["MRR"])
        assert m["latency_ms"]["p50"] > 0 and m["latency_ms"]["p99"] >= m["latency_ms"]["p50"]
    assert replayed["models"]["A"]["model"] == "STGNN" and replayed["models"]["B"]["model"] == "UserHistory"
    d = replayed["comparison"]["diff"]
    assert set(d) == {"Acc@1", "Acc@5", "Acc@10", "MRR"}
    for v in d.values():
        assert v["lo"] <= v["diff"] <= v["hi"]
        assert v["diff"] == pytest.approx(v["a"] - v["b"])
    text = format_replay(replayed)
    assert "| A: STGNN |" in text and "95% CI" in text


def test_replay_cli_writes_json(serve_runs, tmp_path, capsys):
    from stgnn.cli import main

    out = tmp_path / "replay.json"
    split = serve_runs["split"]
    start = int(split.cuts["val_end"])
    rc = main(["replay", str(serve_runs["UserHistory"]), str(serve_runs["UserHistory"]), "--from", str(start),
               "--limit", "40", "--n-boot", "50", "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["checkins"] == 40 and "ranks" not in res
    # the same model on both sides: no difference at all
    assert all(v["diff"] == 0.0 for v in res["comparison"]["diff"].values())
    assert "Paired bootstrap" in capsys.readouterr().out
    assert main(["replay", str(serve_runs["UserHistory"]), str(serve_runs["UserHistory"]), "--from", "2013-01-01",
                 "--limit", "1"]) == 2                      # a time without offset: a clear error, exit 2
    assert "no UTC offset" in capsys.readouterr().err
