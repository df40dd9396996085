"""Recommender: top-k with explanations, new check-ins change the next answer, cold start, every model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stgnn.serve.recommender import MAX_K, MAX_TRAJECTORY_SHOWN, Recommender, RequestError
from stgnn.serve.store import NewCheckin


def _user_at(split):
    """A test sample's user and time (its target is the next check-in)."""
    j = int(split.samples["test"][0])
    return str(split.user_ids[split.user[j]]), int(split.ts[j]), j


def test_recommend_returns_ranked_items_with_explanations(seeded_store, serve_runs, stgnn_loaded):
    split = serve_runs["split"]
    rec = Recommender(stgnn_loaded, seeded_store)
    user, at, j = _user_at(split)
    r = rec.recommend(user, at, k=10)
    assert not r["cold_start"] and r["k"] == 10 and len(r["items"]) == 10
    scores = [it["score"] for it in r["items"]]
    assert scores == sorted(scores, reverse=True)
    a = rec.answer(user, at)
    top = a.scores.topk(10).indices.tolist()
    assert [it["poi"] for it in r["items"]] == [str(split.poi_ids[p]) for p in top]
    # the context is the sample's prefix
    ps = split.prefix_start(np.array([j]))[0]
    assert r["context"]["trajectory_length"] == j - ps
    shown = min(j - ps, MAX_TRAJECTORY_SHOWN)
    assert [c["poi"] for c in r["context"]["trajectory"]] == [str(split.poi_ids[p]) for p in split.poi[j - shown:j]]
    assert r["context"]["current_poi"] == str(split.poi_ids[split.poi[j - 1]])
    # explanations: the pointer's memory weights, relations from the current POI, time of week
    for it in r["items"]:
        e = it["explanation"]
        assert e["memory"]["kind"] == "pointer"
        assert 0.0 <= e["memory"]["memory_share"] <= 1.0
        visits = e["memory"]["checkins"]
        assert e["memory"]["visits"] >= len(visits)
        for c in visits:
            assert c["poi"] == it["poi"] and c["ts"] < at and 0.0 <= c["pointer_weight"] <= 1.0
        assert {x["type"] for x in e["relations"]} <= {"transition", "nearby", "same_category", "same_poi"}
    # a revisit explained by memory: the top item's pointer weights sum to the pointer mass on it
    out = a.out
    first = rec.catalog.poi_index[r["items"][0]["poi"]]
    mem = torch.cat([a.batch.hist_poi, a.batch.poi], 1)[0]
    mask = torch.cat([a.batch.hist_mask, a.batch.mask], 1)[0]
    mass = float(out["copy_w"][0][(mem == first) & mask].sum())
    assert mass == pytest.approx(float(out["p_copy"][0, first]), abs=1e-5)
    # transition relation counts are the training graph's
    for it in r["items"]:
        for rel in it["explanation"]["relations"]:
            if rel["type"] == "transition":
                src, dst = rec.catalog.poi_index[rel["from"]], rec.catalog.poi_index[it["poi"]]
                train = split.part == 0
                same = (split.traj[1:] == split.traj[:-1]) & train[1:] & train[:-1]
                n = int(((split.poi[:-1] == src) & (split.poi[1:] == dst) & same).sum())
                assert rel["count"] == n > 0


def test_time_of_week_pattern_counts_training_check_ins(seeded_store, serve_runs, stgnn_loaded):
    from stgnn.features.time import hour_of_week

    split = serve_runs["split"]
    rec = Recommender(stgnn_loaded, seeded_store)
    user, at, j = _user_at(split)
    r = rec.recommend(user, at, k=3, at_tz=-240)
    how = int(hour_of_week(np.int64(at), np.int64(-240)))
    for it in r["items"]:
        t = it["explanation"]["time_of_week"]
        p = rec.catalog.poi_index[it["poi"]]
        m = (split.poi == p) & (split.part == 0)
        h = hour_of_week(split.ts[m], split.tz_offset_min[m])
        assert t["hour_of_week"] == how
        assert t["checkins_total"] == int(m.sum())
        assert t["checkins_in_window"] == int(np.isin(h, [(how + d) % 168 for d in (-1, 0, 1)]).sum())


def test_a_new_check_in_changes_the_next_answer(seeded_store, serve_runs, stgnn_loaded):
    split = serve_runs["split"]
    rec = Recommender(stgnn_loaded, seeded_store)
    user, at, j = _user_at(split)
    before = rec.recommend(user, at, k=10)
    # check in, ten minutes before `at`, at a POI this user has never visited
    u = split.user[j]
    seen = set(split.poi[split.user_ptr[u]:split.user_ptr[u + 1]].tolist())
    new = next(p for p in np.argsort(-np.bincount(split.poi, minlength=split.num_pois)) if p not in seen)
    raw = str(split.poi_ids[new])
    s_before = float(rec.answer(user, at).scores[new])
    seeded_store.add_checkins([NewCheckin(id="just-now", user=user, poi=raw, ts=at - 600, tz=-240)])
    after = rec.recommend(user, at, k=10)
    assert after["context"]["current_poi"] == raw
    assert after["context"]["trajectory"][-1]["ts"] == at - 600
    assert [i["poi"] for i in after["items"]] != [i["poi"] for i in before["items"]]
    assert float(rec.answer(user, at).scores[new]) > s_before       # the pointer can now copy it
    # and nothing was retrained: the same model object, the same weights
    assert rec.model is stgnn_loaded.model


def test_user_history_explains_with_the_visits_that_voted(seeded_store, serve_runs, user_history_loaded):
    split = serve_runs["split"]
    rec = Recommender(user_history_loaded, seeded_store)
    user, at, _ = _user_at(split)
    r = rec.recommend(user, at, k=5)
    m = user_history_loaded.model
    a = rec.answer(user, at)
    personal = m.personal(a.batch)[0]
    for it in r["items"]:
        e = it["explanation"]["memory"]
        assert e["kind"] == "votes"
        p = rec.catalog.poi_index[it["poi"]]
        # the votes of the visits to p are its personal term
        assert e["vote_total"] == pytest.approx((1 - m.eps - m.transition_weight) * float(personal[p]), abs=2e-5)
        votes = [c["vote"] for c in e["checkins"]]
        assert votes == sorted(votes, reverse=True)


def test_cold_start_users_get_popular_nearby_pois(seeded_store, serve_runs, stgnn_loaded):
    split = serve_runs["split"]
    rec = Recommender(stgnn_loaded, seeded_store)
    at = int(split.cuts["val_end"])
    r = rec.recommend("someone-new", at, k=5, lat=40.75, lon=-73.98)
    assert r["cold_start"] and r["cold_start_reason"] == "user unknown to the model"
    info = r["context"]["cold_start"]
    assert info["place_from"] == "request"
    km = rec.catalog.km_from(40.75, -73.98)
    for it in r["items"]:
        assert km[rec.catalog.poi_index[it["poi"]]] <= info["radius_km"]
        assert it["explanation"]["relations"][0]["type"] == "nearby"
    # without a place: the busiest POIs of the training period at this hour of the week
    r2 = rec.recommend("someone-new", at, k=3)
    assert r2["cold_start"] and "lat" not in r2["context"]["cold_start"]
    # a known user asked about a time before any of their check-ins is cold too
    user, _, _ = _user_at(split)
    r3 = rec.recommend(user, 1, k=3)
    assert r3["cold_start"] and r3["cold_start_reason"] == "no check-in before this time"
    # a new user who checked in: cold (no model id) but placed at their latest check-in
    seeded_store.add_checkins([NewCheckin(id="nu-1", user="someone-new", poi=str(split.poi_ids[7]), ts=at - 60)])
    r4 = rec.recommend("someone-new", at, k=3)
    assert r4["cold_start"] and r4["context"]["cold_start"]["place_from"] == "latest stored check-in"


def test_check_ins_at_pois_the_model_does_not_know_are_left_out(seeded_store, serve_runs, stgnn_loaded):
    split = serve_runs["split"]
    rec = Recommender(stgnn_loaded, seeded_store)
    user, at, _ = _user_at(split)
    before = rec.answer(user, at).scores
    seeded_store.add_checkins([NewCheckin(id="np-1", user=user, poi="brand-new", ts=at - 60,
                                          poi_info={"category": "Pop-up", "lat": 40.7, "lon": -73.9})])
    r = rec.recommend(user, at, k=3)
    assert r["context"]["left_out_checkins"] == 1
    assert torch.equal(rec.answer(user, at).scores, before)
    assert "brand-new" not in [i["poi"] for i in r["items"]]


def test_exclude_and_bounds(seeded_store, serve_runs, stgnn_loaded):
    split = serve_runs["split"]
    rec = Recommender(stgnn_loaded, seeded_store)
    user, at, _ = _user_at(split)
    top = [i["poi"] for i in rec.recommend(user, at, k=5)["items"]]
    r = rec.recommend(user, at, k=5, exclude=top[:2])
    assert [i["poi"] for i in r["items"]][:3] == top[2:5]
    for k in (0, MAX_K + 1, True, 2.5):
        with pytest.raises(RequestError, match="k must be an integer"):
            rec.recommend(user, at, k=k)
    with pytest.raises(RequestError, match="unknown POI") as e:
        rec.recommend(user, at, exclude=["nope"])
    assert e.value.status == 404
    assert rec.recommend(user, at, k=MAX_K, explain=False)["items"][-1]["rank"] == MAX_K


@pytest.mark.parametrize("model", ["pop", "mf_bpr", "lstm", "gru4rec", "sasrec", "stan", "getnext", "lightgcn"])
def test_every_baseline_serves_through_the_same_interface(tmp_path, serve_runs, seeded_store, model):
    """Untrained (random) weights suffice: serving only needs ``score(batch)``."""
    from stgnn import recipes
    from stgnn.config import ExperimentConfig, dump_config, from_dict
    from stgnn.inputs import INPUTS_FILE
    from stgnn.registry import build_model
    from stgnn.serve.loading import load_run

    split = serve_runs["split"]
    kw = {"stan": {"history": 0, "max_len": 16}, "sasrec": {"max_len": 16}, "getnext": {"max_len": 16}}.get(model, {})
    cfg = from_dict(ExperimentConfig, {"name": model, "dataset": "synthetic", "model": model, "model_kwargs": kw,
                                       "train": {"max_len": 16}})
    run = tmp_path / model
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(cfg))
    inputs = recipes.run_inputs(cfg, recipes.load_split(cfg))
    inputs.save(run / INPUTS_FILE)
    m = build_model(model, inputs, **kw)
    if m.trainable:
        torch.save({"format": 1, "model": m.state_dict()}, run / "best.pt")
    rec = Recommender(load_run(run), seeded_store)
    user, at, j = _user_at(split)
    r = rec.recommend(user, at, k=5)
    assert len(r["items"]) == 5 and not r["cold_start"]
    assert all(set(i["explanation"]) == {"memory", "relations", "time_of_week"} for i in r["items"])


def test_km_list_equals_the_vectorised_km(stgnn_loaded):
    """Explanations take distances from ``Catalog.km_list`` (plain floats for the top-k): the same
    values as the numpy ``km`` for every POI, NaN where coordinates are unknown."""
    cat = stgnn_loaded.catalog
    pois = list(range(cat.num_pois))
    for a in (0, cat.num_pois // 2, cat.num_pois - 1):
        got, ref = np.array(cat.km_list(a, pois)), np.atleast_1d(cat.km(a, np.array(pois)))
        assert np.allclose(got, ref, rtol=1e-12, atol=1e-9, equal_nan=True) and got[a] == 0.0
