// Shale console: plain JavaScript over PD's /console/api/ JSON.
"use strict";

const api = (path) => fetch("api/" + path).then(async (r) => {
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
  return body;
});

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

// fillTable renders rows into a <table>: columns are [header, cell(row), class].
function fillTable(id, columns, rows, empty) {
  const t = document.getElementById(id);
  t.replaceChildren();
  t.append(el("tr", {}, ...columns.map((c) => el("th", {}, c[0]))));
  if (rows.length === 0) {
    t.append(el("tr", {}, el("td", { colspan: columns.length }, empty || "none")));
    return;
  }
  for (const r of rows) {
    t.append(el("tr", {}, ...columns.map((c) => {
      const v = c[1](r);
      return el("td", c[2] ? { class: typeof c[2] === "function" ? c[2](r) : c[2] } : {}, v);
    })));
  }
}

function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + u[i];
}
const rate = (n) => n >= 100 ? n.toFixed(0) : n.toFixed(1);
const ago = (ms) => ms ? Math.max(0, Math.round((Date.now() - ms) / 1000)) + "s ago" : "-";
const peers = (t) => t.peers.map((p) => p.store_id + (p.role === "voter" ? "" : "(" + p.role + ")")).join(",");
const keyCell = (table, row) => row === "" ? table : table + " / " + row;

function setStatus(msg, isError) {
  const s = document.getElementById("status");
  s.textContent = msg;
  s.className = isError ? "error" : "";
}

const pages = {
  async overview() {
    const o = await api("overview");
    const states = Object.entries(o.stores_by_state).map(([k, v]) => v + " " + k).join(", ");
    document.getElementById("overview-summary").textContent =
      `Leader ${o.leader} · cluster ${o.cluster_id} · ${o.stores.length} stores (${states || "none"}) · ` +
      `${o.table_count} tables · ${o.tablet_count} tablets`;
    fillTable("stores-table", [
      ["ID", (s) => s.id, "num"], ["Address", (s) => s.address],
      ["State", (s) => s.state, (s) => "state-" + s.state],
      ["Labels", (s) => Object.entries(s.labels).map(([k, v]) => k + "=" + v).join(",") || "-"],
      ["Tablets", (s) => s.tablet_count, "num"], ["Leaders", (s) => s.leader_count, "num"],
      ["Used", (s) => bytes(s.used_bytes), "num"], ["Available", (s) => bytes(s.available_bytes), "num"],
      ["Capacity", (s) => bytes(s.capacity_bytes), "num"],
      ["Read QPS", (s) => rate(s.read_qps), "num"], ["Write QPS", (s) => rate(s.write_qps), "num"],
      ["Heartbeat", (s) => ago(s.last_heartbeat_unix_ms)],
    ], o.stores, "no stores registered");
  },
  async tables() {
    const ts = await api("tables");
    fillTable("tables-table", [
      ["ID", (t) => t.id, "num"], ["Name", (t) => t.name], ["Version", (t) => t.version, "num"],
      ["Families", (t) => t.families.map((f) => f.name +
        (f.max_versions ? " versions=" + f.max_versions : "") + (f.max_age_ms ? " age=" + f.max_age_ms / 1000 + "s" : "")).join(", ")],
      ["Tablets", (t) => el("a", { href: "#tablets?table=" + encodeURIComponent(t.name) }, "show")],
    ], ts);
  },
  async tablets(params) {
    const table = params.get("table") || "", row = params.get("row");
    document.getElementById("tablet-table").value = table;
    document.getElementById("tablet-row").value = row || "";
    const q = new URLSearchParams();
    if (table) q.set("table", table);
    if (row !== null && row !== "") q.set("row", row);
    const ts = await api("tablets?" + q);
    document.getElementById("tablets-summary").textContent =
      row ? `Row "${row}" of ${table} is in tablet ${ts.length ? ts[0].id : "?"}` :
        `${ts.length} tablet(s)` + (table ? " of " + table : "");
    tabletTable("tablets-table", ts);
  },
  async operators() {
    const ops = await api("operators");
    const cols = [["Tablet", (o) => o.tablet_id, "num"], ["Kind", (o) => o.kind],
      ["Description", (o) => o.description], ["Created", (o) => ago(o.created_unix_ms)]];
    fillTable("operators-running", cols.concat([["Step", (o) => o.step || "-"]]), ops.running, "no operator running");
    fillTable("operators-recent", cols.concat([["Status", (o) => o.status], ["Ended", (o) => ago(o.ended_unix_ms)]]),
      ops.recent, "none ended since this member became leader");
  },
  async hot() {
    const kind = document.getElementById("hot-kind").value, by = document.getElementById("hot-by").value;
    tabletTable("hot-table", await api(`hot?kind=${kind}&by=${by}`));
  },
  async config() {
    const cfg = await api("config");
    fillTable("config-table", [["Key", (e) => e[0]], ["Value", (e) => e[1]]], Object.entries(cfg).sort());
  },
  async heatmap() {
    const metric = document.getElementById("heatmap-metric").value;
    const minutes = document.getElementById("heatmap-minutes").value;
    drawHeatmap(await api(`heatmap?metric=${metric}&minutes=${minutes}`));
  },
};

function tabletTable(id, ts) {
  fillTable(id, [
    ["ID", (t) => t.id, "num"], ["Start", (t) => keyCell(t.start_table, t.start_row), "key"],
    ["End", (t) => keyCell(t.end_table, t.end_row), "key"],
    ["Leader", (t) => t.leader_store_id ? t.leader_store_id + " (" + t.leader_address + ")" : "-"],
    ["Peers", peers], ["Size", (t) => bytes(t.approximate_size), "num"],
    ["Read ops/s", (t) => rate(t.read_qps), "num"], ["Write ops/s", (t) => rate(t.write_qps), "num"],
    ["Read B/s", (t) => bytes(t.read_bytes_per_sec), "num"], ["Write B/s", (t) => bytes(t.write_bytes_per_sec), "num"],
  ], ts, "no tablets");
}

// colour maps v in [0, 1] to black → blue → red → yellow → white.
function colour(v) {
  const stops = [[0, 0, 0], [30, 40, 160], [200, 40, 60], [250, 200, 40], [255, 255, 230]];
  const x = Math.min(1, Math.max(0, v)) * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
  const c = stops[i].map((a, j) => Math.round(a + (stops[i + 1][j] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

const GUTTER = 140, AXIS = 24;

function drawHeatmap(h) {
  const canvas = document.getElementById("heatmap"), ctx = canvas.getContext("2d");
  const cols = h.times_unix_ms.length, rows = h.rows.length;
  canvas.dataset.columns = cols;
  canvas.dataset.rows = rows;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  document.getElementById("heatmap-summary").textContent = cols === 0 ? "No tablet has reported yet." :
    `${cols} minute(s) × ${rows} key range(s); brightest ${rate(h.max)} ${h.unit}`;
  const legend = document.getElementById("heatmap-tables");
  legend.replaceChildren();
  if (cols === 0 || rows === 0) return;
  const w = (canvas.width - GUTTER) / cols, hgt = (canvas.height - AXIS) / rows;
  const logMax = Math.log1p(h.max);
  for (let c = 0; c < cols; c++) {
    for (let r = 0; r < rows; r++) {
      const v = h.values[c][r];
      ctx.fillStyle = v > 0 && logMax > 0 ? colour(0.15 + 0.85 * Math.log1p(v) / logMax) : "#0b0f1a";
      ctx.fillRect(GUTTER + c * w, r * hgt, Math.ceil(w), Math.ceil(hgt));
    }
  }
  // Table labels at the first row of each table, and lines between tables.
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "top";
  let prev = null;
  for (let r = 0; r < rows; r++) {
    const t = h.rows[r].table;
    if (t === prev) continue;
    prev = t;
    ctx.fillStyle = "#ccc";
    ctx.fillRect(GUTTER - 6, r * hgt, canvas.width - GUTTER + 6, 1);
    ctx.fillStyle = "#fff";
    ctx.fillText(t.length > 20 ? t.slice(0, 19) + "…" : t, 4, r * hgt + 1);
    legend.append(el("li", {}, t));
  }
  // Time labels: first, middle and last column.
  ctx.textBaseline = "bottom";
  for (const c of new Set([0, Math.floor(cols / 2), cols - 1])) {
    const d = new Date(h.times_unix_ms[c]);
    ctx.fillStyle = "#fff";
    ctx.fillText(d.toTimeString().slice(0, 5), Math.min(GUTTER + c * w, canvas.width - 36), canvas.height - 4);
  }
  canvas.onmousemove = (ev) => {
    const c = Math.floor((ev.offsetX - GUTTER) / w), r = Math.floor(ev.offsetY / hgt);
    const tip = document.getElementById("heatmap-tip");
    if (c < 0 || c >= cols || r < 0 || r >= rows) { tip.hidden = true; return; }
    const row = h.rows[r];
    tip.textContent = `${row.table}${row.row ? " / " + row.row : ""}\n` +
      `${new Date(h.times_unix_ms[c]).toLocaleString()}\n${rate(h.values[c][r])} ${h.unit}`;
    tip.style.left = (ev.offsetX + 12) + "px";
    tip.style.top = (ev.offsetY + 12) + "px";
    tip.hidden = false;
  };
  canvas.onmouseleave = () => { document.getElementById("heatmap-tip").hidden = true; };
}

async function show() {
  const [name, query] = (location.hash.slice(1) || "overview").split("?");
  const page = pages[name] ? name : "overview";
  for (const s of document.querySelectorAll(".page")) s.classList.toggle("active", s.id === "page-" + page);
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === "#" + page);
  try {
    await pages[page](new URLSearchParams(query || ""));
    setStatus("updated " + new Date().toLocaleTimeString());
    document.body.dataset.loaded = page;
  } catch (e) {
    setStatus(e.message, true);
    document.body.dataset.loaded = page + ":error";
  }
}

document.getElementById("tablet-search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = new URLSearchParams();
  const t = document.getElementById("tablet-table").value, r = document.getElementById("tablet-row").value;
  if (t) q.set("table", t);
  if (r) q.set("row", r);
  location.hash = "tablets?" + q;
});
for (const id of ["hot-kind", "hot-by", "heatmap-metric", "heatmap-minutes"]) {
  document.getElementById(id).addEventListener("change", show);
}
window.addEventListener("hashchange", show);
setInterval(() => { if (!document.hidden) show(); }, 10000);
show();
