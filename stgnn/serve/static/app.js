// stgnn demo page: POIs on a canvas (coloured by category), a user's recent trajectory and top-10
// on an SVG overlay, explanations in the side panel; click a POI to check the user in there.
// Everything comes from this server's API; nothing is loaded from outside.
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#17becf", "#bcbd22", "#393b79", "#637939", "#7b4173"];
const OTHER = "#b8bfcc";
const W = 900, H = 700;
const SHOWN = 10;                     // check-ins of the current trajectory drawn and listed
const state = { pois: null, index: new Map(), catColor: [], view: null, user: null, at: null, tz: 0,
                recs: [], traj: [], selected: null, writesNeedToken: false, busy: false };
const $ = (id) => document.getElementById(id);

function setStatus(msg, isError) {
  const el = $("status");
  el.textContent = msg || "";
  el.style.color = isError ? "#c0392b" : "";
}

async function api(path, opts) {
  const res = await fetch(path, opts);
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
  return body;
}

// ------------------------------------------------------------------ map projection
function fitView() {
  const p = state.pois, lats = [], lons = [];
  for (let i = 0; i < p.poi.length; i++) if (p.lat[i] !== null) { lats.push(p.lat[i]); lons.push(p.lon[i]); }
  const q = (a, f) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(f * (s.length - 1))]; };
  const lat0 = q(lats, 0.005), lat1 = q(lats, 0.995), lon0 = q(lons, 0.005), lon1 = q(lons, 0.995);
  const k = Math.cos(((lat0 + lat1) / 2) * Math.PI / 180);      // equirectangular, true at mid-latitude
  const scale = 0.92 * Math.min(W / Math.max((lon1 - lon0) * k, 1e-9), H / Math.max(lat1 - lat0, 1e-9));
  state.view = { cx: (lon0 + lon1) / 2, cy: (lat0 + lat1) / 2, k, scale };
}

// zoom to what matters for this user: the recent trajectory and the top-10 (at least ~3 km across)
function fitToUser() {
  const pts = state.traj.slice(-SHOWN).concat(state.recs).filter((c) => c.lat !== null);
  if (!pts.length) return;
  let lat0 = Math.min(...pts.map((c) => c.lat)), lat1 = Math.max(...pts.map((c) => c.lat));
  let lon0 = Math.min(...pts.map((c) => c.lon)), lon1 = Math.max(...pts.map((c) => c.lon));
  const minSpan = 0.03;                                   // degrees of latitude, about 3 km
  const cy = (lat0 + lat1) / 2, cx = (lon0 + lon1) / 2;
  const k = Math.cos(cy * Math.PI / 180);
  const spanLat = Math.max(lat1 - lat0, minSpan), spanLon = Math.max(lon1 - lon0, minSpan / k);
  const scale = 0.8 * Math.min(W / (spanLon * k), H / spanLat);
  fitView();
  state.view = { cx, cy, k, scale: Math.max(scale, state.view.scale) };
}

function project(lat, lon) {
  const v = state.view;
  return [W / 2 + (lon - v.cx) * v.k * v.scale, H / 2 - (lat - v.cy) * v.scale];
}

function unproject(x, y) {
  const v = state.view;
  return [v.cy - (y - H / 2) / v.scale, v.cx + (x - W / 2) / (v.k * v.scale)];
}

// ------------------------------------------------------------------ drawing
function drawMap() {
  const ctx = $("map").getContext("2d"), p = state.pois;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fbfcfd";
  ctx.fillRect(0, 0, W, H);
  const r = Math.max(1.5, Math.min(4, state.view.scale / 4000));
  for (const pass of [false, true]) {                // grey first, coloured on top
    for (let i = 0; i < p.poi.length; i++) {
      if (p.lat[i] === null) continue;
      const col = state.catColor[p.category[i]];
      if ((col !== OTHER) !== pass) continue;
      const [x, y] = project(p.lat[i], p.lon[i]);
      if (x < -5 || y < -5 || x > W + 5 || y > H + 5) continue;
      ctx.fillStyle = col;
      ctx.globalAlpha = pass ? 0.75 : 0.5;
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  ctx.globalAlpha = 1;
  drawOverlay();
}

function svg(tag, attrs, text) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function drawOverlay() {
  const g = $("overlay");
  g.replaceChildren();
  const traj = state.traj.slice(-SHOWN).filter((c) => c.lat !== null);
  if (traj.length) {
    const pts = traj.map((c) => project(c.lat, c.lon).map((v) => v.toFixed(1)).join(",")).join(" ");
    g.appendChild(svg("polyline", { points: pts, fill: "none", stroke: "#d62728", "stroke-width": 2.5,
                                    "stroke-opacity": 0.85 }));
    traj.forEach((c, i) => {
      const [x, y] = project(c.lat, c.lon), last = i === traj.length - 1;
      g.appendChild(svg("circle", { cx: x, cy: y, r: last ? 7 : 4.5, fill: last ? "#d62728" : "#fff",
                                    stroke: "#d62728", "stroke-width": 2 }));
    });
  }
  state.recs.forEach((it) => {
    if (it.lat === null) return;
    const [x, y] = project(it.lat, it.lon);
    g.appendChild(svg("circle", { cx: x, cy: y, r: 9, fill: "#1f4fd1", "fill-opacity": 0.85, stroke: "#fff",
                                  "stroke-width": 1.5, class: "rec-marker" }));
    g.appendChild(svg("text", { x, y: y + 3.5, "text-anchor": "middle", "font-size": 10, fill: "#fff",
                                "font-weight": 700 }, String(it.rank)));
  });
  if (state.selected !== null) {
    const i = state.selected, p = state.pois;
    const [x, y] = project(p.lat[i], p.lon[i]);
    g.appendChild(svg("circle", { cx: x, cy: y, r: 11, fill: "none", stroke: "#111", "stroke-width": 2,
                                  "stroke-dasharray": "3 2" }));
  }
}

function legend() {
  const el = $("legend"), p = state.pois;
  el.replaceChildren();
  state.topCats.forEach((c, j) => {
    const s = document.createElement("span");
    s.innerHTML = `<i style="background:${PALETTE[j]}"></i>`;
    s.appendChild(document.createTextNode(p.categories[c]));
    el.appendChild(s);
  });
  const s = document.createElement("span");
  s.innerHTML = `<i style="background:${OTHER}"></i>other`;
  el.appendChild(s);
}

// ------------------------------------------------------------------ side panel
function fmtTime(ts, tz) {
  const d = new Date((ts + tz * 60) * 1000).toISOString();
  return `${d.slice(0, 10)} ${d.slice(11, 16)}`;
}

function whyText(e) {
  const out = [];
  if (!e) return out;
  const m = e.memory;
  if (m && m.visits) {
    const share = m.memory_share !== undefined ? `, ${(100 * m.memory_share).toFixed(0)}% from memory` : "";
    const w = m.checkins.length && m.checkins[0].pointer_weight !== undefined
      ? `, pointer ${m.checkins[0].pointer_weight.toFixed(3)}` : (m.vote_total !== undefined ? `, vote ${m.vote_total.toFixed(3)}` : "");
    out.push(`visited ${m.visits}×${w}${share}`);
  } else if (m && m.kind !== "none") {
    out.push("new place for this user");
  }
  for (const r of e.relations || []) {
    if (r.type === "transition") {
      out.push(`${r.count} trip${r.count === 1 ? "" : "s"} from current POI (${(100 * r.share).toFixed(0)}%)`);
    }
    else if (r.type === "nearby") out.push(`${r.km.toFixed(2)} km${r.near ? " (graph neighbour)" : ""}`);
    else if (r.type === "same_category") out.push(`same category`);
    else if (r.type === "same_poi") out.push(`stay`);
  }
  const t = e.time_of_week;
  if (t && t.lift !== null && t.checkins_total > 0) {
    out.push(t.lift > 0 ? `${t.label}: ×${t.lift.toFixed(1)} its usual traffic` : `${t.label}: usually quiet`);
  }
  if (e.popularity) out.push(`${e.popularity.train_checkins} check-ins in training`);
  return out;
}

function renderTrajectory(ctx) {
  const ol = $("trajectory"), all = ctx.trajectory || [];
  ol.replaceChildren();
  const total = ctx.trajectory_length || all.length, earlier = total - Math.min(all.length, SHOWN);
  $("traj-more").textContent = earlier > 0 ? `(last ${Math.min(all.length, SHOWN)} of ${total})` : "";
  ol.start = Math.max(earlier, 0) + 1;
  for (const c of all.slice(-SHOWN)) {
    const li = document.createElement("li");
    li.textContent = `${c.category} — ${fmtTime(c.ts, state.tz)}`;
    ol.appendChild(li);
  }
  if (!(ctx.trajectory || []).length) ol.innerHTML = "<li class='muted'>no check-in before this time</li>";
}

function renderRecs(r, before) {
  const ol = $("recs");
  ol.replaceChildren();
  const old = new Set(before.map((x) => x.poi));
  for (const it of r.items) {
    const li = document.createElement("li");
    li.dataset.poi = it.poi;
    if (before.length && !old.has(it.poi)) li.classList.add("new-rec");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = it.name;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `  score ${it.score.toFixed(3)}`;
    const why = document.createElement("div");
    why.className = "why";
    for (const t of whyText(it.explanation)) {
      const s = document.createElement("span");
      s.textContent = t;
      why.appendChild(s);
    }
    li.append(name, score, why);
    li.addEventListener("click", () => selectPoi(state.index.get(it.poi)));
    ol.appendChild(li);
  }
  $("cold-flag").hidden = !r.cold_start;
}

// ------------------------------------------------------------------ actions
function setAt(at) {
  state.at = at;
  $("at-input").value = new Date((at + state.tz * 60) * 1000).toISOString().slice(0, 16);
}

function readAt() {
  const v = $("at-input").value;
  if (!v) return state.at;
  return Math.floor(Date.parse(v + ":00Z") / 1000) - state.tz * 60;
}

async function recommend() {
  if (!state.user) return;
  state.at = readAt();
  setStatus("asking…");
  const t0 = performance.now();
  const q = `/recommend?user=${encodeURIComponent(state.user)}&k=10&at=${state.at}&tz_offset_min=${state.tz}`;
  const r = await api(q);
  const before = state.recs;
  state.recs = r.items;
  state.traj = r.context.trajectory || [];
  renderTrajectory(r.context);
  renderRecs(r, before);
  drawOverlay();
  document.body.dataset.recsVersion = String((Number(document.body.dataset.recsVersion) || 0) + 1);
  setStatus(`${r.items.length} recommendations from ${r.model} at ${fmtTime(r.at, state.tz)} ` +
            `(${(performance.now() - t0).toFixed(0)} ms round trip, ${r.elapsed_ms.toFixed(1)} ms in the model)`);
}

async function loadUser(user) {
  state.user = user;
  state.selected = null;
  $("poi-popup").hidden = true;
  const last = await api(`/users/${encodeURIComponent(user)}/checkins?limit=1`);
  const c = last.checkins[0];
  state.tz = c ? c.tz_offset_min : 0;
  state.recs = [];
  setAt(c ? c.ts + 3600 : Math.floor(Date.now() / 1000));
  await recommend();
  fitToUser();
  drawMap();
}

async function selectPoi(i) {
  if (i === undefined || i === null) return;
  state.selected = i;
  drawOverlay();
  const p = state.pois, id = p.poi[i];
  const info = await api(`/pois/${encodeURIComponent(id)}`);
  const [x, y] = project(p.lat[i], p.lon[i]);
  const pop = $("poi-popup");
  $("poi-popup-body").innerHTML = "";
  const b = document.createElement("div");
  b.innerHTML = `<strong></strong><br><span class="muted small"></span>`;
  b.querySelector("strong").textContent = info.text || info.category;
  b.querySelector("span").textContent = `${info.category} · ${info.checkins} check-ins · ${id}`;
  $("poi-popup-body").appendChild(b);
  pop.style.left = `${Math.min(Math.max(x + 12, 4), W - 270)}px`;
  pop.style.top = `${Math.min(Math.max(y - 10, 4), H - 110)}px`;
  pop.dataset.poi = id;
  pop.hidden = false;
}

async function checkIn() {
  const id = $("poi-popup").dataset.poi;
  if (!id || !state.user) return;
  state.at = readAt();
  const headers = { "Content-Type": "application/json" };
  const token = $("token-input").value;
  if (token) headers.Authorization = `Bearer ${token}`;
  const cid = `page-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`;
  try {
    await api("/checkins", { method: "POST", headers, body: JSON.stringify(
      { id: cid, user: state.user, poi: id, time: state.at, tz_offset_min: state.tz }) });
  } catch (e) {
    setStatus(`check-in refused: ${e.message}`, true);
    return;
  }
  $("poi-popup").hidden = true;
  state.selected = null;
  setAt(state.at + 15 * 60);                           // ask again a quarter of an hour later
  await recommend();
}

function nearestPoi(x, y, maxPx) {
  const p = state.pois;
  let best = null, bd = maxPx * maxPx;
  for (let i = 0; i < p.poi.length; i++) {
    if (p.lat[i] === null) continue;
    const [px, py] = project(p.lat[i], p.lon[i]);
    const d = (px - x) ** 2 + (py - y) ** 2;
    if (d < bd) { bd = d; best = i; }
  }
  return best;
}

function wireMap() {
  const c = $("map");
  let drag = null, moved = false;
  c.addEventListener("mousedown", (e) => { drag = [e.offsetX, e.offsetY]; moved = false; });
  c.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const dx = e.offsetX - drag[0], dy = e.offsetY - drag[1];
    if (Math.abs(dx) + Math.abs(dy) > 3) moved = true;
    if (!moved) return;
    state.view.cx -= dx / (state.view.k * state.view.scale);
    state.view.cy += dy / state.view.scale;
    drag = [e.offsetX, e.offsetY];
    $("poi-popup").hidden = true;
    drawMap();
  });
  c.addEventListener("mouseup", (e) => {
    const wasDrag = moved;
    drag = null;
    if (wasDrag) return;
    const i = nearestPoi(e.offsetX, e.offsetY, 10);
    if (i !== null) selectPoi(i).catch((err) => setStatus(err.message, true));
  });
  c.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [lat, lon] = unproject(e.offsetX, e.offsetY);
    const f = e.deltaY < 0 ? 1.25 : 0.8;
    state.view.scale *= f;
    const [lat2, lon2] = unproject(e.offsetX, e.offsetY);       // keep the point under the cursor fixed
    state.view.cx += lon - lon2;
    state.view.cy += lat - lat2;
    $("poi-popup").hidden = true;
    drawMap();
  }, { passive: false });
}

async function init() {
  try {
    const h = await api("/healthz");
    $("model-info").textContent = `${h.model.model} · run ${h.model.name} · ${h.model.num_pois} POIs · ` +
      `${h.store.checkins} stored check-ins`;
    state.writesNeedToken = h.writes_need_token;
    $("token-row").hidden = !h.writes_need_token;
    state.pois = await api("/map/pois");
    const p = state.pois;
    p.poi.forEach((id, i) => state.index.set(id, i));
    const counts = new Array(p.categories.length).fill(0);
    p.category.forEach((c) => counts[c]++);
    state.topCats = counts.map((n, c) => [n, c]).sort((a, b) => b[0] - a[0]).slice(0, PALETTE.length).map((x) => x[1]);
    state.catColor = new Array(p.categories.length).fill(OTHER);
    state.topCats.forEach((c, j) => { state.catColor[c] = PALETTE[j]; });
    fitView();
    legend();
    drawMap();
    wireMap();
    const users = (await api("/users?limit=200")).users;
    const sel = $("user-select");
    for (const u of users) {
      const o = document.createElement("option");
      o.value = u.user;
      o.textContent = `${u.user} (${u.checkins} check-ins${u.known_to_model ? "" : ", new"})`;
      sel.appendChild(o);
    }
    sel.addEventListener("change", () => loadUser(sel.value).catch((e) => setStatus(e.message, true)));
    $("refresh-btn").addEventListener("click", () => recommend().catch((e) => setStatus(e.message, true)));
    $("checkin-btn").addEventListener("click", () => checkIn().catch((e) => setStatus(e.message, true)));
    $("popup-close").addEventListener("click", () => { $("poi-popup").hidden = true; state.selected = null; drawOverlay(); });
    if (users.length) await loadUser(users[0].user);
    document.body.dataset.ready = "1";
  } catch (e) {
    setStatus(`could not load: ${e.message}`, true);
  }
}

// for tests and the console: where a POI is drawn on the canvas
window.stgnn = { state, screenPosition(id) { const i = state.index.get(id); return i === undefined ? null :
  project(state.pois.lat[i], state.pois.lon[i]); } };
init();
