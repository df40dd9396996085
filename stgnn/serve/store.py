"""The check-in store: an embedded SQLite file that is the source of truth for user history.

One file (WAL journal) holds the POIs (raw id, category, coordinates, text), the categories and
every check-in (client-supplied id, user, POI, UTC time, tz offset). A write is durable before
:meth:`CheckinStore.add_checkins` returns: each call is one transaction, committed with
``synchronous=FULL`` (the WAL is fsync'd at commit), so an acknowledged check-in survives a
``kill -9`` of the server or a power cut. Writes are idempotent by the client's id: posting the
same check-in twice stores it once; the same id with different content is a conflict.

The store keeps raw ids only (user strings, POI strings, category names), never a model's
integer ids, so two models with different vocabularies (a hot swap, a replay A/B) read the same
store. ``seq`` (insertion order) breaks ties between check-ins of one user at the same second,
so a store seeded from a :class:`~stgnn.data.split.Split` returns every user's check-ins in the
split's order.

Trajectories: a check-in seeded from a split carries the split's own trajectory boundary
(``traj_start`` 1/0); a check-in written later has ``traj_start`` NULL and is split from the
previous one by the protocol's gap rule when read (:mod:`stgnn.serve.live_batch`).

Thread safety: one SQLite connection per thread (``threading.local``); writers are serialised
by a lock (SQLite allows one writer at a time anyway), readers never wait for them (WAL).

Several processes (``stgnn serve --workers N``) may open one file: SQLite's file locks serialise
their writers (``BEGIN IMMEDIATE`` waits up to 30 s for another process's commit), the unique
``checkins.id`` keeps writes idempotent across processes (the duplicate check runs inside the
writing transaction), and nothing a request reads is kept per process except what cannot go
stale: a POI's or category's key never changes once committed, and :attr:`CheckinStore.version`
is a counter in the file.
"""
from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

# NewCheckin, StoreError and the checks are part of this module's interface too
from stgnn.serve.records import (MAX_ID_LEN, MAX_TEXT_LEN, MAX_TS, NewCheckin, StoreError, check_coord,  # noqa: F401
                                 check_id, check_ts, check_tz)

SCHEMA_VERSION = 1
MAX_GROUP = 256               # most write jobs committed together (group commit)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS categories (key INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS pois (
    key INTEGER PRIMARY KEY,
    poi TEXT NOT NULL UNIQUE,
    category_key INTEGER NOT NULL REFERENCES categories(key),
    lat REAL, lon REAL,
    text TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkins (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user TEXT NOT NULL,
    poi_key INTEGER NOT NULL REFERENCES pois(key),
    category_key INTEGER NOT NULL REFERENCES categories(key),
    ts INTEGER NOT NULL,
    tz INTEGER NOT NULL,
    traj_start INTEGER,
    received_at REAL NOT NULL
);
-- covering: a request's read of a user's latest rows (user_rows) never visits the table itself
-- (half the read's CPU on NYC); it replaced checkins_user_time (user, ts, seq), dropped when found
CREATE INDEX IF NOT EXISTS checkins_user_cover ON checkins (user, ts, seq, poi_key, category_key, tz, traj_start);
DROP INDEX IF EXISTS checkins_user_time;
CREATE INDEX IF NOT EXISTS checkins_time ON checkins (ts, seq);
-- covering: a check-in posted without tz_offset_min takes its POI's latest tz (_add_one); without it
-- that read walked checkins_time back until it met the POI (~9 ms CPU per write on NYC, most of a
-- write's cost); also counts a POI's check-ins (poi)
CREATE INDEX IF NOT EXISTS checkins_poi_time ON checkins (poi_key, ts, seq, tz);
"""


# the tz of a POI's latest check-in (a check-in posted without one takes it): an index search
POI_LAST_TZ = "SELECT tz FROM checkins WHERE poi_key = ? ORDER BY ts DESC, seq DESC LIMIT 1"


@dataclass
class _WriteJob:
    """One ``add_checkins`` call waiting for the writer thread."""

    items: list[NewCheckin]
    names: list[str] | None
    results: list[dict[str, Any]] | None = None
    error: Exception | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class UserRows:
    """A user's stored check-ins before a time, oldest first (store keys, not model ids).

    Shapes: every array ``(n,)``; ``traj_start`` is 1/0 for seeded rows and -1 where the gap
    rule decides (rows written after seeding).
    """

    poi_key: np.ndarray
    category_key: np.ndarray
    ts: np.ndarray
    tz: np.ndarray
    traj_start: np.ndarray
    complete: bool          # True when these are all of the user's check-ins before the time

    def __len__(self) -> int:
        return len(self.ts)


class CheckinStore:
    """SQLite check-in store (module docstring).

    Args:
        path: the database file (created with its folder when missing).
        durable: ``synchronous=FULL`` (fsync at every commit). ``False`` (``synchronous=OFF``)
            is for throw-away stores such as a replay's, where a crash loses nothing of value.
    """

    def __init__(self, path: str | os.PathLike, durable: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.durable = durable
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        conn = self._conn()
        with self._write_lock:
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('pois_version', '0')")
            conn.commit()
        version = self.meta().get("schema_version")
        if version != str(SCHEMA_VERSION):
            raise StoreError(f"{self.path}: store schema version {version}, this stgnn reads {SCHEMA_VERSION}; "
                             "use another --store path", status=500)
        self._poi_cache: dict[str, int] = {}
        self._cat_cache: dict[str, int] = {}
        # group commit (add_checkins): queued jobs and the one writer thread that commits them
        self._queue: list[_WriteJob] = []
        self._queue_lock = threading.Lock()
        self._queue_cv = threading.Condition(self._queue_lock)
        self._writer: threading.Thread | None = None
        self._closing = False

    # ------------------------------------------------------------------ connections
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'OFF'}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        """Finish queued writes, stop the writer, close every thread's connection (the store is
        unusable afterwards)."""
        with self._queue_lock:
            self._closing = True
            self._queue_cv.notify_all()
        if self._writer is not None:
            self._writer.join(timeout=30)
        with self._conns_lock:
            for c in self._conns:
                c.close()
            self._conns.clear()
        self._local = threading.local()

    def __enter__(self) -> "CheckinStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ meta
    def meta(self) -> dict[str, str]:
        return dict(self._conn().execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, **values: Any) -> None:
        with self._write_lock:
            c = self._conn()
            c.execute("BEGIN IMMEDIATE")
            c.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])
            c.execute("COMMIT")

    @property
    def version(self) -> int:
        """Bumped (in the same transaction) whenever POIs or categories are added, so id maps and
        POI tables built from them know to refresh. Kept in the file, not in this object: with
        ``stgnn serve --workers N`` a POI registered through one process must refresh every
        process's maps (one indexed read per call)."""
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'pois_version'").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _bump_version(c: sqlite3.Connection) -> None:
        c.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'pois_version'")

    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM checkins").fetchone()[0])

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a sound file, else SQLite's list of problems."""
        return "\n".join(r[0] for r in self._conn().execute("PRAGMA integrity_check").fetchall())

    # ------------------------------------------------------------------ seeding
    def seed_from_split(self, split: Any, until: int | None = None, chunk: int = 50_000) -> int:
        """Write ``split``'s POIs and its check-ins with ``ts < until`` (all when ``None``).

        Only into an empty store: a store that holds check-ins is the source of truth and is
        never overwritten (raises :class:`StoreError`). Check-in ids are ``seed:<index in the
        split>``; each keeps the split's trajectory boundary. Returns the number written.
        """
        if self.count() > 0:
            raise StoreError(f"{self.path} already holds check-ins; seed only an empty store", status=409)
        cats = [str(c) for c in split.category_names]
        starts = np.zeros(split.num_checkins, dtype=np.int64)
        starts[split.traj_ptr[:-1]] = 1
        keep = np.ones(split.num_checkins, dtype=bool) if until is None else split.ts < until
        rows = np.flatnonzero(keep)
        with self._write_lock:
            c = self._conn()
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany("INSERT INTO categories (key, name) VALUES (?, ?)", enumerate(cats))
                c.executemany(
                    "INSERT INTO pois (key, poi, category_key, lat, lon, text, source) VALUES (?,?,?,?,?,?,'seed')",
                    ((i, str(split.poi_ids[i]), int(split.poi_category[i]),
                      None if np.isnan(split.poi_lat[i]) else float(split.poi_lat[i]),
                      None if np.isnan(split.poi_lon[i]) else float(split.poi_lon[i]), str(split.poi_text[i]))
                     for i in range(split.num_pois)))
                now = time.time()
                users = split.user_ids
                for i in range(0, len(rows), chunk):
                    r = rows[i:i + chunk]
                    c.executemany(
                        "INSERT INTO checkins (id, user, poi_key, category_key, ts, tz, traj_start, received_at) "
                        "VALUES (?,?,?,?,?,?,?,?)",
                        zip((f"seed:{j}" for j in r.tolist()), (str(users[u]) for u in split.user[r].tolist()),
                            split.poi[r].tolist(), split.category[r].tolist(), split.ts[r].tolist(),
                            split.tz_offset_min[r].tolist(), starts[r].tolist(), [now] * len(r)))
                c.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                    ("seeded_from", f"{split.name}:{split.fingerprint()}"),
                    ("seeded_until", "" if until is None else str(int(until))),
                    # the training period's end (a time cut: ``part == 0`` is ``ts < train_end`` under
                    # the default span), so a served catalog counts training traffic without the split
                    ("train_end", str(int(split.cuts["train_end"])) if "train_end" in split.cuts else ""),
                    ("traj_gap_hours", str(float(split.protocol.get("traj_gap_hours", 24.0))))])
                self._bump_version(c)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        self._poi_cache.clear()
        self._cat_cache.clear()
        return len(rows)

    # ------------------------------------------------------------------ POIs and categories
    def poi_key(self, poi: str) -> int | None:
        """The store key of raw POI id ``poi`` (``None`` when unknown)."""
        key = self._poi_cache.get(poi)
        if key is None:
            row = self._conn().execute("SELECT key FROM pois WHERE poi = ?", (poi,)).fetchone()
            if row is None:
                return None
            key = self._poi_cache[poi] = int(row[0])
        return key

    def poi(self, poi: str) -> dict[str, Any] | None:
        """One POI as a dict (``poi, category, lat, lon, text, source, checkins``), ``None`` when unknown."""
        row = self._conn().execute(
            "SELECT p.key, p.poi, c.name, p.lat, p.lon, p.text, p.source FROM pois p "
            "JOIN categories c ON c.key = p.category_key WHERE p.poi = ?", (poi,)).fetchone()
        if row is None:
            return None
        n = self._conn().execute("SELECT COUNT(*) FROM checkins WHERE poi_key = ?", (row[0],)).fetchone()[0]
        return {"poi": row[1], "category": row[2], "lat": row[3], "lon": row[4], "text": row[5],
                "source": row[6], "checkins": int(n)}

    def poi_table(self) -> dict[str, np.ndarray]:
        """Every POI: ``key (K,)``, ``poi (K,)`` raw ids, ``category (K,)`` names, ``lat``, ``lon`` ``(K,)``
        (NaN when unknown), ``text (K,)``, ordered by key."""
        rows = self._conn().execute(
            "SELECT p.key, p.poi, c.name, p.lat, p.lon, p.text FROM pois p JOIN categories c "
            "ON c.key = p.category_key ORDER BY p.key").fetchall()
        key, poi, cat, lat, lon, text = zip(*rows) if rows else ((),) * 6
        return {"key": np.asarray(key, np.int64), "poi": np.asarray(poi, object), "category": np.asarray(cat, object),
                "lat": np.asarray([np.nan if v is None else v for v in lat], np.float64),
                "lon": np.asarray([np.nan if v is None else v for v in lon], np.float64),
                "text": np.asarray(text, object)}

    def checkin_times(self, before: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(poi_key, ts, tz)`` ``(n,)`` int64 of every check-in with ``ts < before`` (all: ``None``)."""
        a = np.array(self._conn().execute("SELECT poi_key, ts, tz FROM checkins WHERE ts < ?",
                                          (MAX_TS if before is None else int(before),)).fetchall(),
                     dtype=np.int64).reshape(-1, 3)
        return a[:, 0], a[:, 1], a[:, 2]

    def poi_keys(self) -> dict[str, int]:
        """``{raw POI id: store key}`` of every POI."""
        return dict(self._conn().execute("SELECT poi, key FROM pois").fetchall())

    def category_keys(self) -> dict[str, int]:
        """``{category name: store key}``."""
        return dict(self._conn().execute("SELECT name, key FROM categories").fetchall())

    def _category_key(self, c: sqlite3.Connection, name: str) -> int:
        key = self._cat_cache.get(name)
        if key is None:
            row = c.execute("SELECT key FROM categories WHERE name = ?", (name,)).fetchone()
            if row is None:
                c.execute("INSERT INTO categories (name) VALUES (?)", (name,))
                row = c.execute("SELECT key FROM categories WHERE name = ?", (name,)).fetchone()
            key = self._cat_cache[name] = int(row[0])
        return key

    def _register_poi(self, c: sqlite3.Connection, poi: str, info: dict[str, Any], where: str) -> int:
        unknown = sorted(set(info) - {"category", "lat", "lon", "text"})
        if unknown:
            raise StoreError(f"{where}.poi_info: unknown field(s) {unknown}; use category, lat, lon, text",
                             f"{where}.poi_info")
        cat = info.get("category")
        if not isinstance(cat, str) or not cat.strip() or len(cat) > MAX_ID_LEN:
            raise StoreError(f"{where}.poi_info.category: a new POI needs a category name (1-{MAX_ID_LEN} "
                             f"characters), got {cat!r}", f"{where}.poi_info.category")
        lat = check_coord(info.get("lat"), f"{where}.poi_info.lat", 90.0)
        lon = check_coord(info.get("lon"), f"{where}.poi_info.lon", 180.0)
        text = info.get("text", "")
        if not isinstance(text, str) or len(text) > MAX_TEXT_LEN:
            raise StoreError(f"{where}.poi_info.text must be a string of at most {MAX_TEXT_LEN} characters",
                             f"{where}.poi_info.text")
        ck = self._category_key(c, cat.strip())
        c.execute("INSERT INTO pois (poi, category_key, lat, lon, text, source) VALUES (?,?,?,?,?,'api')",
                  (poi, ck, lat, lon, text))
        return int(c.execute("SELECT key FROM pois WHERE poi = ?", (poi,)).fetchone()[0])

    # ------------------------------------------------------------------ check-ins
    def add_checkins(self, items: Sequence[NewCheckin], names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Validate and write ``items`` as one all-or-nothing unit, durable when this returns.

        Returns one ``{"id", "status": "created"|"duplicate", "seq"}`` per item, in order. Nothing
        is written when any item is invalid (:class:`StoreError` naming ``<name>.<field>``, the
        name ``checkins[i]`` unless ``names`` gives one per item); a reused id with different
        content is a 409 conflict.

        Group commit: calls from several threads that arrive while a commit is being fsync'd are
        written together in the next transaction (one savepoint each, so one caller's bad item
        never affects another's) and share its fsync. Each caller returns after that commit.
        """
        job = _WriteJob(list(items), list(names) if names else None)
        with self._queue_lock:
            self._queue.append(job)
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="stgnn-store-writer", daemon=True)
                self._writer.start()
            self._queue_cv.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.results is not None
        return job.results

    def _write_loop(self) -> None:
        """The single writer: take every queued job, write them in one transaction, commit, wake them."""
        while True:
            with self._queue_lock:
                while not self._queue:
                    if self._closing:
                        return
                    self._queue_cv.wait(timeout=1.0)
                jobs, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            self._write_group(jobs)

    def _write_group(self, jobs: list["_WriteJob"]) -> None:
        ok: list[_WriteJob] = []
        with self._write_lock:
            c = self._conn()
            try:
                c.execute("BEGIN IMMEDIATE")
                for job in jobs:
                    c.execute("SAVEPOINT job")
                    try:
                        job.results = [self._add_one(c, it, job.names[i] if job.names else f"checkins[{i}]")
                                       for i, it in enumerate(job.items)]
                        c.execute("RELEASE job")
                        ok.append(job)
                    except Exception as e:      # this job's items are undone; the others go on
                        c.execute("ROLLBACK TO job")
                        c.execute("RELEASE job")
                        job.error = e
                        # POIs/categories it registered were rolled back: forget their cached keys
                        self._poi_cache.clear()
                        self._cat_cache.clear()
                c.execute("COMMIT")
            except Exception as e:              # the commit itself failed: nothing of the group is durable
                try:
                    c.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                self._poi_cache.clear()
                self._cat_cache.clear()
                for job in ok:
                    job.results, job.error = None, StoreError(f"the store could not commit: {e}", status=503)
        for job in jobs:
            job.done.set()

    def _add_one(self, c: sqlite3.Connection, it: NewCheckin, where: str) -> dict[str, Any]:
        cid = check_id(it.id, f"{where}.id")
        user = check_id(it.user, f"{where}.user")
        poi = check_id(it.poi, f"{where}.poi")
        ts = check_ts(it.ts, f"{where}.ts")
        tz = None if it.tz is None else check_tz(it.tz, f"{where}.tz_offset_min")
        row = c.execute("SELECT p.key, p.category_key FROM pois p WHERE p.poi = ?", (poi,)).fetchone()
        if row is None:
            if it.poi_info is None:
                raise StoreError(f"{where}.poi: unknown POI {poi!r}; register it by adding poi_info "
                                 "{category, lat, lon[, text]} to this check-in", f"{where}.poi", status=404)
            pkey = self._register_poi(c, poi, it.poi_info, where)
            ckey = self._category_key(c, it.poi_info["category"].strip())
            registered = True
        else:
            registered = False
            pkey, ckey = int(row[0]), int(row[1])
        old = c.execute("SELECT seq, user, poi_key, ts, tz FROM checkins WHERE id = ?", (cid,)).fetchone()
        if old is not None:
            if (old[1], old[2], old[3]) != (user, pkey, ts) or (tz is not None and tz != old[4]):
                raise StoreError(f"{where}.id {cid!r} was already used for a different check-in "
                                 f"(user {old[1]!r}, ts {old[3]}); ids are idempotency keys, use a new one",
                                 f"{where}.id", status=409)
            return {"id": cid, "status": "duplicate", "seq": int(old[0])}
        if tz is None:
            last = c.execute(POI_LAST_TZ, (pkey,)).fetchone()
            tz = int(last[0]) if last else 0
        cur = c.execute("INSERT INTO checkins (id, user, poi_key, category_key, ts, tz, traj_start, received_at) "
                        "VALUES (?,?,?,?,?,?,NULL,?)", (cid, user, pkey, ckey, ts, tz, time.time()))
        out = {"id": cid, "status": "created", "seq": int(cur.lastrowid)}
        if registered:
            out["registered_poi"] = poi
            self._bump_version(c)       # inside this job's savepoint: undone with it
        return out

    def user_rows(self, user: str, before: int, limit: int) -> UserRows:
        """The user's last ``limit`` check-ins with ``ts < before``, oldest first."""
        rows = self._conn().execute(
            "SELECT poi_key, category_key, ts, tz, COALESCE(traj_start, -1) FROM checkins WHERE user = ? AND ts < ? "
            "ORDER BY ts DESC, seq DESC LIMIT ?", (user, int(before), int(limit))).fetchall()
        # flattened straight into int64 (np.array of a list of tuples costs ~3x as much)
        a = np.fromiter(itertools.chain.from_iterable(reversed(rows)), np.int64, 5 * len(rows)).reshape(-1, 5)
        return UserRows(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], complete=len(rows) < limit)

    def user_checkins(self, user: str, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        """The user's most recent check-ins (newest first) as dicts, for the API."""
        rows = self._conn().execute(
            "SELECT k.id, p.poi, c.name, k.ts, k.tz, p.lat, p.lon FROM checkins k "
            "JOIN pois p ON p.key = k.poi_key JOIN categories c ON c.key = k.category_key "
            "WHERE k.user = ? AND k.ts < ? ORDER BY k.ts DESC, k.seq DESC LIMIT ?",
            (user, MAX_TS if before is None else int(before), int(limit))).fetchall()
        return [{"id": r[0], "poi": r[1], "category": r[2], "ts": r[3], "tz_offset_min": r[4], "lat": r[5],
                 "lon": r[6]} for r in rows]

    def has_user(self, user: str) -> bool:
        return self._conn().execute("SELECT 1 FROM checkins WHERE user = ? LIMIT 1", (user,)).fetchone() is not None

    def users(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Users with the most check-ins first: ``[{"user", "checkins", "last_ts"}]``."""
        rows = self._conn().execute(
            "SELECT user, COUNT(*) AS n, MAX(ts) FROM checkins GROUP BY user ORDER BY n DESC, user LIMIT ? OFFSET ?",
            (int(limit), int(offset))).fetchall()
        return [{"user": r[0], "checkins": int(r[1]), "last_ts": int(r[2])} for r in rows]

    def has_ids(self, ids: Iterable[str]) -> set[str]:
        """The subset of ``ids`` that the store holds (for durability checks)."""
        ids = list(ids)
        found: set[str] = set()
        c = self._conn()
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            q = f"SELECT id FROM checkins WHERE id IN ({','.join('?' * len(part))})"
            found.update(r[0] for r in c.execute(q, part).fetchall())
        return found
