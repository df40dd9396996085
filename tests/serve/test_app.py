"""The HTTP API through FastAPI's TestClient: answers, writes, tokens, hot swap, and a table of
malformed requests that must each get a 4xx JSON answer with a clear message (never a 500)."""
from __future__ import annotations

import json
import threading

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from stgnn.serve.app import MAX_BATCH, MAX_BODY_BYTES, create_app  # noqa: E402
from stgnn.serve.recommender import Recommender  # noqa: E402
from stgnn.serve.service import Service  # noqa: E402

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def service(seeded_store, stgnn_loaded, serve_runs):
    from stgnn.serve.loading import load_run

    cache = {str(serve_runs["STGNN"]): stgnn_loaded}

    def loader(run):
        key = str(run)
        if key not in cache:
            cache[key] = load_run(run)
        return Recommender(cache[key], seeded_store)

    return Service(Recommender(stgnn_loaded, seeded_store), seeded_store, token=TOKEN, loader=loader)


@pytest.fixture()
def client(service):
    return TestClient(create_app(service), raise_server_exceptions=False)


def _sample(split):
    j = int(split.samples["test"][0])
    return str(split.user_ids[split.user[j]]), int(split.ts[j]), str(split.poi_ids[split.poi[j]])


def test_recommend_and_read_endpoints(client, serve_runs):
    split = serve_runs["split"]
    user, at, _ = _sample(split)
    r = client.get("/recommend", params={"user": user, "k": 3, "at": at})
    assert r.status_code == 200
    body = r.json()
    assert len(body["items"]) == 3 and body["at"] == at and not body["cold_start"]
    assert {"poi", "name", "category", "lat", "lon", "score", "explanation"} <= set(body["items"][0])
    # ISO times with an offset are the same moment
    import datetime as dt
    iso = dt.datetime.fromtimestamp(at, dt.timezone(dt.timedelta(hours=-4))).isoformat()
    assert client.get("/recommend", params={"user": user, "k": 3, "at": iso}).json()["items"] == body["items"]
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["model"]["model"] == "STGNN" and h["store"]["checkins"] == split.num_checkins
    assert h["writes_need_token"] is True
    p = client.get(f"/pois/{body['items'][0]['poi']}").json()
    assert p["known_to_model"] and p["category"] == body["items"][0]["category"]
    c = client.get(f"/users/{user}/checkins", params={"limit": 2, "before": at}).json()["checkins"]
    assert len(c) == 2 and c[0]["ts"] < at and c[0]["ts"] >= c[1]["ts"]
    users = client.get("/users", params={"limit": 3}).json()["users"]
    assert len(users) == 3 and users[0]["checkins"] >= users[1]["checkins"]
    m = client.get("/map/pois").json()
    assert len(m["poi"]) == split.num_pois == len(m["lat"]) and max(m["category"]) < len(m["categories"])
    assert client.get("/openapi.json").json()["paths"]["/recommend"]["get"]["parameters"]
    for page in ("/", "/docs", "/static/app.js", "/static/style.css", "/static/docs.js"):
        assert client.get(page).status_code == 200, page
    # nothing on the page comes from outside
    html = client.get("/").text + client.get("/static/app.js").text + client.get("/docs").text
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html


def test_check_ins_one_and_batch_idempotent(client, serve_runs, seeded_store):
    split = serve_runs["split"]
    user, at, poi = _sample(split)
    one = {"id": "w-1", "user": user, "poi": poi, "time": at - 30, "tz_offset_min": -240}
    r = client.post("/checkins", json=one, headers=AUTH)
    assert r.status_code == 201 and r.json()["status"] == "created"
    r = client.post("/checkins", json=one, headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    batch = {"checkins": [{"id": f"w-b{i}", "user": "newcomer", "poi": poi, "time": at + i} for i in range(3)]
             + [{"id": "w-new", "user": "newcomer", "poi": "fresh-poi", "time": at + 9,
                 "poi_info": {"category": "Food Truck", "lat": 40.71, "lon": -74.0}}]}
    r = client.post("/checkins", json=batch, headers=AUTH)
    assert r.status_code == 201 and [x["status"] for x in r.json()["results"]] == ["created"] * 4
    assert seeded_store.has_ids(["w-1", "w-b0", "w-b2", "w-new"]) == {"w-1", "w-b0", "w-b2", "w-new"}
    assert client.get("/pois/fresh-poi").json()["known_to_model"] is False
    # the new check-in is what the next answer sees
    rec = client.get("/recommend", params={"user": user, "at": at, "k": 1}).json()
    assert rec["context"]["current_poi"] == poi and rec["context"]["trajectory"][-1]["ts"] == at - 30


def _big_batch():
    return {"checkins": [{"id": f"x{i}", "user": "u", "poi": "p", "time": 1} for i in range(MAX_BATCH + 1)]}


# (name, method, path, params / json / raw body, headers, expected status, message fragment)
MALFORMED = [
    ("k not an integer", "get", "/recommend", {"params": {"user": "u0", "k": "ten"}}, {}, 422, "valid integer"),
    ("k too large", "get", "/recommend", {"params": {"user": "u0", "k": 100000}}, {}, 422, "less than or equal"),
    ("k zero", "get", "/recommend", {"params": {"user": "u0", "k": 0}}, {}, 422, "greater than or equal"),
    ("user missing", "get", "/recommend", {"params": {"k": 3}}, {}, 422, "query parameter user: Field required"),
    ("user too long", "get", "/recommend", {"params": {"user": "u" * 500}}, {}, 422, "at most 128"),
    ("at not a time", "get", "/recommend", {"params": {"user": "u0", "at": "tuesday"}}, {}, 422, "is not a time"),
    ("at without offset", "get", "/recommend", {"params": {"user": "u0", "at": "2012-05-01T10:00:00"}}, {}, 422,
     "no UTC offset"),
    ("at out of range", "get", "/recommend", {"params": {"user": "u0", "at": "99999999999"}}, {}, 422,
     "outside 1970"),
    ("lat without lon", "get", "/recommend", {"params": {"user": "u0", "lat": 40.7}}, {}, 422, "both lat and lon"),
    ("lat out of range", "get", "/recommend", {"params": {"user": "u0", "lat": 200, "lon": 0}}, {}, 422,
     "less than or equal to 90"),
    ("tz out of range", "get", "/recommend", {"params": {"user": "u0", "tz_offset_min": 5000}}, {}, 422,
     "tz_offset_min"),
    ("exclude unknown POI", "get", "/recommend", {"params": {"user": "u0", "exclude": "nope"}}, {}, 404,
     "unknown POI 'nope'"),
    ("unknown user's check-ins", "get", "/users/ghost/checkins", {}, {}, 404, "unknown user 'ghost'"),
    ("unknown POI", "get", "/pois/ghost", {}, {}, 404, "unknown POI 'ghost'"),
    ("unknown endpoint", "get", "/recommendations", {}, {}, 404, "no such endpoint"),
    ("wrong method", "delete", "/checkins", {}, {}, 405, "DELETE is not allowed"),
    ("write without token", "post", "/checkins", {"json": {"id": "a", "user": "u", "poi": "p", "time": 1}}, {},
     401, "missing bearer token"),
    ("write with wrong token", "post", "/checkins", {"json": {"id": "a", "user": "u", "poi": "p", "time": 1}},
     {"Authorization": "Bearer nope"}, 401, "wrong bearer token"),
    ("body not JSON", "post", "/checkins", {"content": b"{id: 1"}, AUTH, 422, "not valid JSON"),
    ("empty body", "post", "/checkins", {"content": b""}, AUTH, 422, "empty body"),
    ("body a list", "post", "/checkins", {"json": [1, 2]}, AUTH, 422, "must be a JSON object"),
    ("field missing", "post", "/checkins", {"json": {"id": "a", "user": "u", "poi": "p"}}, AUTH, 422,
     "body.time is required"),
    ("unknown field", "post", "/checkins", {"json": {"id": "a", "user": "u", "poi": "p", "time": 1, "x": 2}}, AUTH,
     422, "unknown field(s) ['x']"),
    ("id a number", "post", "/checkins", {"json": {"id": 5, "user": "u", "poi": "p", "time": 1}}, AUTH, 422,
     "body.id must be a non-empty string"),
    ("time a boolean", "post", "/checkins", {"json": {"id": "a", "user": "u", "poi": "p", "time": True}}, AUTH, 422,
     "body.time"),
    ("time bad string", "post", "/checkins", {"json": {"id": "a", "user": "u", "poi": "p", "time": "soon"}}, AUTH,
     422, "is not a time"),
    ("check-in at unknown POI", "post", "/checkins", {"json": {"id": "a", "user": "u", "poi": "ghost", "time": 1}},
     AUTH, 404, "unknown POI 'ghost'; register it"),
    ("new POI without coordinates", "post", "/checkins",
     {"json": {"id": "a", "user": "u", "poi": "ghost", "time": 1, "poi_info": {"category": "Bar"}}}, AUTH, 422,
     "poi_info.lat must be a finite number"),
    ("batch too large", "post", "/checkins", {"json": _big_batch()}, AUTH, 413, "at most 1000"),
    ("body too large", "post", "/checkins", {"content": b"[" + b" " * MAX_BODY_BYTES + b"]"}, AUTH, 413,
     "request body over"),
    ("batch with an extra key", "post", "/checkins", {"json": {"checkins": [], "more": 1}}, AUTH, 422,
     "no other field"),
    ("empty batch", "post", "/checkins", {"json": {"checkins": []}}, AUTH, 422, "non-empty list"),
    ("bad item in a batch", "post", "/checkins",
     {"json": {"checkins": [{"id": "ok", "user": "u", "poi": "p", "time": 1}, {"id": "b", "user": "u"}]}},
     AUTH, 422, "checkins[1].poi is required"),
    ("reload without token", "post", "/admin/reload", {}, {}, 401, "missing bearer token"),
    ("reload of a missing run", "post", "/admin/reload", {"json": {"run": "/no/such/run"}}, AUTH, 404,
     "is not a run folder"),
    ("reload body malformed", "post", "/admin/reload", {"json": {"rn": "x"}}, AUTH, 422, "expected {\"run\""),
    ("static file outside the list", "get", "/static/..%2F..%2Fstore.py", {}, {}, 404, ""),
]


@pytest.mark.parametrize("name,method,path,kw,headers,status,fragment", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_requests_get_a_clear_4xx(client, seeded_store, name, method, path, kw, headers, status, fragment):
    n = seeded_store.count()
    r = getattr(client, method)(path, headers=headers, **kw)
    assert r.status_code == status, (name, r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error", "field"} and body["error"], body
    assert fragment in body["error"], (name, body)
    assert "Traceback" not in r.text
    assert seeded_store.count() == n                            # nothing half-written


def test_the_table_is_long_enough():
    assert len(MALFORMED) >= 20 and len({m[0] for m in MALFORMED}) == len(MALFORMED)


def _short(v: object, n: int = 64) -> str:
    text = v.decode("latin-1") if isinstance(v, bytes) else v if isinstance(v, str) else json.dumps(v)
    return text if len(text) <= n else f"{text[:n - 20]}… ({len(text):,} characters)"


def malformed_table() -> str:
    """The markdown table of :data:`MALFORMED` that docs/serving.md shows (checked below)."""
    rows = ["| malformed request | sent | status | the error message contains |", "|---|---|---|---|"]
    for name, method, path, kw, headers, status, fragment in MALFORMED:
        sent = f"{method.upper()} {path}"
        if "params" in kw:
            sent += "?" + "&".join(f"{k}={_short(str(v), 28)}" for k, v in kw["params"].items())
        for key in ("json", "content"):
            if key in kw:
                sent += f" body `{_short(kw[key])}`" if kw[key] else " with an empty body"
        if method == "post":
            sent += {None: " (no token)", AUTH["Authorization"]: ""}.get(headers.get("Authorization"), " (wrong token)")
        rows.append(f"| {name} | {sent} | {status} | {f'`{fragment}`' if fragment else 'a JSON error'} |")
    return "\n".join(rows) + "\n"


def test_docs_show_the_malformed_request_table():
    """docs/serving.md holds the table this file tests; regenerate it with
    ``python -c "import sys; sys.path[:0] = ['tests/serve']; import test_app; print(test_app.malformed_table())"``."""
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text()
    assert malformed_table() in docs


def test_admin_is_off_without_a_token(seeded_store, stgnn_loaded):
    svc = Service(Recommender(stgnn_loaded, seeded_store), seeded_store, token=None)
    c = TestClient(create_app(svc), raise_server_exceptions=False)
    r = c.post("/admin/reload")
    assert r.status_code == 403 and "STGNN_API_TOKEN" in r.json()["error"]
    # without a token writes are open
    assert c.get("/healthz").json()["writes_need_token"] is False


def test_an_unexpected_failure_is_a_500_without_traceback(client, service, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("secret internal detail")
    monkeypatch.setattr(service.recommender, "recommend", boom)
    r = client.get("/recommend", params={"user": "u0"})
    assert r.status_code == 500
    assert r.json() == {"error": "internal error; the server log has the details", "field": None}


def test_hot_swap_is_atomic_and_in_flight_requests_finish_on_the_old_model(client, service, serve_runs):
    split = serve_runs["split"]
    user, at, _ = _sample(split)
    old = service.recommender
    entered, release = threading.Event(), threading.Event()
    real = old.recommend

    def slow(*a, **k):
        entered.set()
        assert release.wait(30)
        return real(*a, **k)

    old.recommend = slow                         # instance attribute: only the old model is slow
    result = {}
    t = threading.Thread(target=lambda: result.update(r=client.get("/recommend", params={"user": user, "at": at})))
    t.start()
    assert entered.wait(30)
    r = client.post("/admin/reload", json={"run": str(serve_runs["UserHistory"])}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["current"]["model"] == "UserHistory" and r.json()["previous"]["model"] == "STGNN"
    # new requests are answered by the new model while the old request is still in flight
    assert client.get("/healthz").json()["model"]["model"] == "UserHistory"
    new = client.get("/recommend", params={"user": user, "at": at, "k": 3}).json()
    assert new["model"] == "UserHistory"
    release.set()
    t.join(30)
    assert result["r"].status_code == 200 and result["r"].json()["model"] == "STGNN"
    # a failed reload keeps the current model
    bad = client.post("/admin/reload", json={"run": "/no/such/run"}, headers=AUTH)
    assert bad.status_code == 404 and service.recommender.info()["model"] == "UserHistory"
    # SIGHUP's path: reload the run served now, in a thread
    service.reload_in_background().join(60)
    assert service.reloads == 2 and service.recommender.info()["model"] == "UserHistory"
