"""The HTTP API (FastAPI) and the demo page, over a :class:`~stgnn.serve.service.Service`.

=================================  ==========================================================
``GET /``                          the map page (static files of this package; nothing external)
``GET /recommend``                 ``user``, ``k``, ``at``, ``tz_offset_min``, ``lat``/``lon``, ``exclude``
``POST /checkins``                 one check-in, or ``{"checkins": [...]}``; bearer token if set
``GET /users``                     users with the most check-ins (the page's picker)
``GET /users/{user}/checkins``     a user's latest check-ins
``GET /pois/{poi}``                one POI; ``GET /map/pois`` every POI, compact (the page's map)
``GET /healthz``                   liveness + what is served
``POST /admin/reload``             hot swap to a run (token required)
``GET /docs``, ``/openapi.json``   the API description (the docs page is local too)
=================================  ==========================================================

Every error is a JSON body ``{"error": message, "field": name-or-null}`` with a 4xx status
(413 too large, 401/403 token, 404 unknown id, 409 conflicting id, 422 invalid value); an
unexpected failure is a 500 with a generic message, logged server-side, never a traceback.
Request bodies are capped at :data:`MAX_BODY_BYTES`, batches at :data:`MAX_BATCH`, ``k`` at
:data:`~stgnn.serve.recommender.MAX_K`.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from importlib import resources
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from stgnn.serve.recommender import MAX_K, RequestError
from stgnn.serve.service import Service
from stgnn.serve.records import MAX_ID_LEN, NewCheckin, StoreError, check_tz

log = logging.getLogger("stgnn.serve")

try:                    # the serve extra installs orjson; without it answers are the same JSON, slower
    import orjson

    def dumps(obj: Any) -> bytes:
        """Compact UTF-8 JSON (orjson: ~10x json's speed on an answer with explanations)."""
        return orjson.dumps(obj)
except ImportError:      # pragma: no cover - the serve extra has it
    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class Json(JSONResponse):
    """A JSON answer encoded by :func:`dumps` (plain JSON types only: no ``jsonable_encoder`` pass)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)

MAX_BODY_BYTES = 1 << 20       # 1 MiB
MAX_BATCH = 1_000
MAX_EXCLUDE = 1_000
MAX_LIST = 1_000
STATIC = resources.files("stgnn.serve") / "static"


class ApiError(Exception):
    """A 4xx answer: ``status``, message and the offending field."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


# ---------------------------------------------------------------------------- request bodies (docs)
class PoiInfo(BaseModel):
    """Registers a POI the store does not know yet."""
    model_config = ConfigDict(extra="forbid")
    category: str = Field(..., max_length=MAX_ID_LEN)
    lat: float = Field(..., ge=-90, le=90)
    lon: float = Field(..., ge=-180, le=180)
    text: str = ""


class CheckinIn(BaseModel):
    """One check-in. ``time``: UTC seconds or ISO 8601 with an offset."""
    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., description="client-supplied idempotency key", max_length=MAX_ID_LEN)
    user: str = Field(..., max_length=MAX_ID_LEN)
    poi: str = Field(..., max_length=MAX_ID_LEN)
    time: int | str
    tz_offset_min: int | None = None
    poi_info: PoiInfo | None = None


class CheckinBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checkins: list[CheckinIn] = Field(..., max_length=MAX_BATCH)


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: str | None = Field(None, description="run folder; default: the run served now")


_CHECKIN_FIELDS = {"id", "user", "poi", "time", "tz_offset_min", "poi_info"}


# ---------------------------------------------------------------------------- parsing helpers
def parse_time(value: Any, field: str) -> int:
    """UTC seconds from an integer (or digit string) or an ISO 8601 time with an offset."""
    if isinstance(value, bool):
        raise ApiError(422, f"{field}: give UTC seconds or ISO 8601 with an offset, got {value!r}", field)
    if isinstance(value, int):
        ts = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        ts = int(value.strip())
    elif isinstance(value, str):
        try:
            d = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(422, f"{field}={value!r} is not a time: give UTC seconds or ISO 8601 such as "
                                "2013-01-01T09:00:00-05:00", field) from None
        if d.tzinfo is None:
            raise ApiError(422, f"{field}={value!r} has no UTC offset; add one (e.g. Z or -05:00)", field)
        ts = int(d.timestamp())
    else:
        raise ApiError(422, f"{field}: give UTC seconds or ISO 8601 with an offset, got {value!r}", field)
    if not 0 <= ts < 4_102_444_800:
        raise ApiError(422, f"{field}={value!r} is outside 1970-01-01 .. 2100-01-01", field)
    return ts


def _checkin(obj: Any, where: str) -> NewCheckin:
    if not isinstance(obj, dict):
        raise ApiError(422, f"{where} must be a JSON object with id, user, poi, time", where)
    unknown = sorted(set(obj) - _CHECKIN_FIELDS)
    if unknown:
        raise ApiError(422, f"{where}: unknown field(s) {unknown}; allowed: {sorted(_CHECKIN_FIELDS)}", where)
    for f in ("id", "user", "poi", "time"):
        if f not in obj:
            raise ApiError(422, f"{where}.{f} is required", f"{where}.{f}")
    tz = obj.get("tz_offset_min")
    if tz is not None:
        tz = check_tz(tz, f"{where}.tz_offset_min")
    info = obj.get("poi_info")
    if info is not None and not isinstance(info, dict):
        raise ApiError(422, f"{where}.poi_info must be an object {{category, lat, lon[, text]}}", f"{where}.poi_info")
    return NewCheckin(id=obj["id"], user=obj["user"], poi=obj["poi"], ts=parse_time(obj["time"], f"{where}.time"),
                      tz=tz, poi_info=info)


async def _read_raw(request: Request) -> bytes:
    """The body's bytes, read up to :data:`MAX_BODY_BYTES` (413 beyond, whatever Content-Length says)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes (Content-Length {declared}); "
                            f"send at most {MAX_BATCH} check-ins per request")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes; send at most {MAX_BATCH} check-ins "
                                "per request")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_body(request: Request) -> Any:
    """The JSON body (bounded, :func:`_read_raw`)."""
    raw = await _read_raw(request)
    if not raw.strip():
        raise ApiError(422, "empty body: send a JSON check-in or {\"checkins\": [...]}", "body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(422, f"body is not valid JSON: {e}", "body") from None


def _user(user: str, field: str = "user") -> str:
    if not user.strip() or len(user) > MAX_ID_LEN or any(ord(c) < 32 for c in user):
        raise ApiError(422, f"{field} must be 1-{MAX_ID_LEN} printable characters", field)
    return user


# ---------------------------------------------------------------------------- the app
def create_app(service: Service) -> FastAPI:
    """The FastAPI app over ``service`` (module docstring for the routes)."""
    app = FastAPI(title="stgnn recommendation service", version="1", docs_url=None, redoc_url=None,
                  description="Next-POI recommendations from a trained stgnn run, with incremental check-ins.")
    app.state.service = service

    # ------------------------------------------------------------------ errors: 4xx JSON, never a traceback
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        return JSONResponse({"error": e.message, "field": e.field}, status_code=e.status)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, e: StoreError) -> JSONResponse:
        return JSONResponse({"error": str(e), "field": e.field}, status_code=e.status if e.status < 500 else 422)

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, e: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(e), "field": e.field}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError) -> JSONResponse:
        errs = e.errors()
        first = errs[0] if errs else {"loc": (), "msg": "invalid request"}
        loc = [str(x) for x in first.get("loc", ())]
        where = {"query": "query parameter", "path": "path parameter", "body": "body", "header": "header"}
        field = ".".join(loc[1:]) or (loc[0] if loc else None)
        what = f"{where.get(loc[0], loc[0])} {field}" if loc else "request"
        return JSONResponse({"error": f"{what}: {first.get('msg')}", "field": field}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        msg = {404: f"no such endpoint {request.url.path}; see /docs",
               405: f"{request.method} is not allowed on {request.url.path}; see /docs"}.get(e.status_code, str(e.detail))
        return JSONResponse({"error": msg, "field": None}, status_code=e.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error; the server log has the details", "field": None},
                            status_code=500)

    def require_token(request: Request) -> None:
        if not service.authorized(request.headers.get("authorization")):
            given = request.headers.get("authorization")
            raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <STGNN_API_TOKEN>'" if not given
                           else "wrong bearer token", "Authorization")

    # ------------------------------------------------------------------ reading
    @app.get("/healthz", summary="liveness and what is served")
    def healthz() -> dict[str, Any]:
        rec = service.recommender
        return {"status": "ok", "model": rec.info(), "reloads": service.reloads, "pid": os.getpid(),
                "store": {"path": str(service.store.path), "checkins": service.store.count(),
                          "seeded_until": service.store.meta().get("seeded_until") or None},
                "writes_need_token": service.token is not None}

    @app.get("/recommend", summary="top-k next POIs for a user, with explanations")
    def recommend(user: str = Query(..., max_length=MAX_ID_LEN, description="raw user id"),
                  k: int = Query(10, ge=1, le=MAX_K),
                  at: str | None = Query(None, description="UTC seconds or ISO 8601 (default: now)"),
                  tz_offset_min: int | None = Query(None, ge=-14 * 60, le=14 * 60),
                  lat: float | None = Query(None, ge=-90, le=90, description="the user's place (cold start)"),
                  lon: float | None = Query(None, ge=-180, le=180),
                  exclude: str | None = Query(None, description="comma-separated POI ids to leave out"),
                  explain: bool = True) -> JSONResponse:
        rec = service.recommender                  # one model for the whole request (hot swap)
        when = parse_time(at, "at") if at is not None else None
        if (lat is None) != (lon is None):
            raise ApiError(422, "give both lat and lon, or neither", "lat" if lat is None else "lon")
        ex = [p for p in exclude.split(",") if p] if exclude else []
        if len(ex) > MAX_EXCLUDE:
            raise ApiError(422, f"exclude holds {len(ex)} ids; at most {MAX_EXCLUDE}", "exclude")
        # plain JSON types already: skip FastAPI's recursive jsonable_encoder (a tenth of a request)
        return Json(rec.recommend(_user(user), when, k, ex, at_tz=tz_offset_min, lat=lat, lon=lon,
                                  explain=explain))

    @app.get("/users", summary="users with the most stored check-ins")
    def users(limit: int = Query(50, ge=1, le=MAX_LIST), offset: int = Query(0, ge=0)) -> dict[str, Any]:
        rec = service.recommender
        rows = service.store.users(limit, offset)
        for r in rows:
            r["known_to_model"] = r["user"] in rec.catalog.user_index
        return {"users": rows}

    @app.get("/users/{user}/checkins", summary="a user's latest check-ins, newest first")
    def user_checkins(user: str, limit: int = Query(100, ge=1, le=MAX_LIST),
                      before: str | None = Query(None, description="UTC seconds or ISO 8601")) -> dict[str, Any]:
        _user(user)
        b = parse_time(before, "before") if before is not None else None
        if not service.store.has_user(user):
            raise ApiError(404, f"unknown user {user!r}: no stored check-in", "user")
        return {"user": user, "checkins": service.store.user_checkins(user, limit, b)}

    @app.get("/pois/{poi}", summary="one POI")
    def poi(poi: str) -> dict[str, Any]:
        info = service.store.poi(poi)
        if info is None:
            raise ApiError(404, f"unknown POI {poi!r}", "poi")
        rec = service.recommender
        info["known_to_model"] = poi in rec.catalog.poi_index
        return info

    map_cache: dict[str, Any] = {"version": None, "body": b""}

    @app.get("/map/pois", summary="every POI (id, lat, lon, category index), compact, for the map page")
    def map_pois() -> Response:
        v = service.store.version
        if map_cache["version"] != v or not map_cache["body"]:
            t = service.store.poi_table()
            cats = sorted(set(t["category"].tolist()))
            ci = {c: i for i, c in enumerate(cats)}
            body = {"categories": cats, "poi": t["poi"].tolist(),
                    "lat": [None if x != x else round(x, 6) for x in t["lat"].tolist()],
                    "lon": [None if x != x else round(x, 6) for x in t["lon"].tolist()],
                    "category": [ci[c] for c in t["category"].tolist()]}
            map_cache.update(version=v, body=dumps(body))
        return Response(map_cache["body"], media_type="application/json")

    # ------------------------------------------------------------------ writing
    @app.post("/checkins", status_code=201, summary="store one check-in or a batch (durable before the reply)",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "oneOf": [CheckinIn.model_json_schema(ref_template="#/components/schemas/{model}"),
                            CheckinBatch.model_json_schema(ref_template="#/components/schemas/{model}")]}}}}})
    async def post_checkins(request: Request) -> JSONResponse:
        require_token(request)
        body = await _read_body(request)
        if isinstance(body, dict) and "checkins" in body:
            if set(body) != {"checkins"}:
                raise ApiError(422, "a batch is {\"checkins\": [...]} with no other field", "body")
            items = body["checkins"]
            if not isinstance(items, list) or not items:
                raise ApiError(422, "checkins must be a non-empty list", "checkins")
            if len(items) > MAX_BATCH:
                raise ApiError(413, f"{len(items)} check-ins in one batch; at most {MAX_BATCH}", "checkins")
            parsed = [_checkin(x, f"checkins[{i}]") for i, x in enumerate(items)]
            batch = True
        else:
            parsed, batch = [_checkin(body, "body")], False
        names = None if batch else ["body"]
        results = await run_in_threadpool(service.store.add_checkins, parsed, names)
        status = 201 if any(r["status"] == "created" for r in results) else 200
        return Json({"results": results} if batch else results[0], status_code=status)

    @app.post("/admin/reload", summary="hot swap to a run (token required)")
    async def admin_reload(request: Request) -> dict[str, Any]:
        if service.token is None:
            raise ApiError(403, "admin endpoints are off: start the server with STGNN_API_TOKEN set "
                                "(or send it SIGHUP to reload the same run)")
        require_token(request)
        raw = await _read_raw(request)
        run = None
        if raw.strip():
            try:
                run = ReloadIn.model_validate_json(raw).run
            except ValueError:
                raise ApiError(422, 'body: expected {"run": "<run folder>"} or no body', "run") from None
        try:
            return await run_in_threadpool(service.reload, run, announce=True)
        except FileNotFoundError as e:
            raise ApiError(404, str(e), "run") from None
        except (ValueError, KeyError, RuntimeError) as e:    # a broken run folder: keep serving the old model
            raise ApiError(422, f"cannot load run {run or str(service.run_dir)!r}: {e}", "run") from None

    # ------------------------------------------------------------------ the page and the docs
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(str(STATIC / "docs.html"), media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        allowed = {"app.js": "text/javascript", "style.css": "text/css", "docs.js": "text/javascript"}
        if name not in allowed:
            raise ApiError(404, f"no static file {name!r}", "name")
        return FileResponse(str(STATIC / name), media_type=allowed[name])

    return app
