// hullwatch monitor page: the state from /api/state, then live updates over the /ws websocket.
// Charts are plotly.js (served from the plotly Python package); everything else is plain DOM.
"use strict";

const KPA_TO_MMHG = 7.500616827;  // 1 kPa in mmHg
const POINTS = 1500;              // most points per series over the plot window
const MAX_EVENT_ROWS = 1000;
const COLORS = ["#1c7ed6", "#e03131", "#2f9e44", "#f08c00", "#7048e8", "#0c8599", "#c2255c", "#5c940d",
                "#495057", "#e8590c"];
const MARK_ORDER = ["sealed", "leaking", "isolating", "suspected", "unobservable", "cut-off", "degraded"];

const view = { windowS: 900, series: null, lastEventSeq: -1, ws: null, alarmsOnly: false, acked: 0 };

function $(id) { return document.getElementById(id); }
function fmt(x, digits) { return (x === null || x === undefined || !isFinite(x)) ? "-" : Number(x).toFixed(digits); }
function el(tag, attrs, text) {
  const e = document.createElementNS(tag === "svg" || attrs && attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs || {})) if (k !== "svg") e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs, text) { return el(tag, Object.assign({ svg: true }, attrs), text); }

// ---------------------------------------------------------------------------------------------
// station diagram

function primaryMark(marks) {
  for (const m of MARK_ORDER) if (marks.includes(m)) return m;
  return "nominal";
}

function drawDiagram(state) {
  const root = $("diagram");
  const d = state.diagram;
  root.replaceChildren();
  if (!d) {
    root.setAttribute("viewBox", "0 0 1000 320");
    root.appendChild(svg("text", { x: 500, y: 160, "text-anchor": "middle" }, "waiting for a layout report"));
    return;
  }
  // one column of modules every 250 units, one row every 120: the drawing scales to the panel
  const perColumn = new Map();
  for (const n of d.nodes) perColumn.set(n.x, (perColumn.get(n.x) || 0) + 1);
  const cols = perColumn.size, rows = Math.max(1, ...perColumn.values());
  const W = Math.max(1000, cols * 300), H = Math.max(300, rows * 135 + 40);
  root.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pos = {}, size = {};
  const byName = {};
  for (const m of state.modules) byName[m.name] = m;
  for (const n of d.nodes) {
    const v = Math.log10(Math.max(1, n.volume_m3));
    pos[n.name] = [n.x * W, 30 + n.y * (H - 50)];
    size[n.name] = [170 + 12 * v, 84 + 8 * v];
  }
  const edges = svg("g", { class: "edges" });
  const repressCount = {};
  for (const e of d.edges) {
    const cls = ["edge", e.kind, e.state];
    if (e.health && e.health !== "OK") cls.push("failed");
    const valve = state.valves.find(v => v.id === e.id);
    if (valve && valve.agree === false) cls.push("mismatch");
    const g = svg("g", { class: cls.join(" "), "data-valve": e.id, "data-state": e.state });
    if (e.b === null || e.repress || !pos[e.b]) {
      const [x, y] = pos[e.a]; const [w, h] = size[e.a];
      const k = repressCount[e.a] = (repressCount[e.a] || 0) + 1;
      const x1 = x + w / 2 - 16 * k, y1 = y - h / 2, y2 = Math.max(8, y1 - 20);
      g.appendChild(svg("line", { x1, y1, x2: x1, y2 }));
      g.appendChild(svg("circle", { cx: x1, cy: y2, r: 5, fill: "#fff", stroke: "#495057" }));
      g.appendChild(svg("text", { x: x1 + 8, y: y2 + 4, "text-anchor": "start" }, `${e.id} ${e.state}`));
    } else {
      const [x1, y1] = pos[e.a], [x2, y2] = pos[e.b];
      g.appendChild(svg("line", { x1, y1, x2, y2 }));
      // the label and the closed bar sit halfway between the two boxes' edges
      const [wa] = size[e.a], [wb] = size[e.b];
      const dx = x2 - x1, dy = y2 - y1, len = Math.hypot(dx, dy) || 1;
      const f = len > 0 ? (wa / 2 + (len - wa / 2 - wb / 2) / 2) / len : 0.5;
      const mx = x1 + dx * f, my = y1 + dy * f;
      if (e.state === "closed") {
        const nx = -dy / len * 14, ny = dx / len * 14;
        g.appendChild(svg("line", { class: "bar", x1: mx - nx, y1: my - ny, x2: mx + nx, y2: my + ny }));
      }
      // the name beside the line, on its upper side
      const ox = dy / len * 16 * (dy > 0 ? -1 : 1), oy = -Math.abs(dx) / len * 16;
      g.appendChild(svg("text", { x: mx + ox, y: my + oy - 2 }, e.id));
    }
    g.appendChild(svg("title", {}, `${e.id} (${e.kind}): ${e.state}` + (valve && valve.command ? `, commanded ${valve.command}` : "")
      + (e.health && e.health !== "OK" ? `, ${e.health}` : "")));
    edges.appendChild(g);
  }
  root.appendChild(edges);
  for (const n of d.nodes) {
    const m = byName[n.name] || {};
    const mark = primaryMark(n.marks);
    const g = svg("g", { class: ["module", mark].concat(n.marks.filter(x => x !== mark)).join(" "),
                         "data-module": n.name, "data-marks": n.marks.join(" ") });
    const [x, y] = pos[n.name], [w, h] = size[n.name];
    g.appendChild(svg("rect", { x: x - w / 2, y: y - h / 2, width: w, height: h, rx: 8 }));
    g.appendChild(svg("text", { class: "name", x, y: y - h / 2 + 20 }, n.name));
    const label = n.marks.length ? n.marks.map(s => s.toUpperCase().replace("-", " ")).join(" · ") : "NOMINAL";
    g.appendChild(svg("text", { class: "state", x, y: y - h / 2 + 40 }, label));
    if (m.pressure_pa !== null && m.pressure_pa !== undefined)
      g.appendChild(svg("text", { class: "value", x, y: y + h / 2 - 12 }, `${fmt(m.pressure_kpa, 2)} kPa · ${fmt(m.pressure_mmhg, 1)} mmHg`));
    g.appendChild(svg("title", {}, `${n.name}, ${n.volume_m3} m³: ${m.status || "no data"}` +
      (m.leak_rate_kg_s !== undefined ? `, segment leak rate ${fmt(m.leak_rate_kg_s * 1000, 4)} g/s` : "")));
    root.appendChild(g);
  }
}

// ---------------------------------------------------------------------------------------------
// panels

function kv(table, rows) {
  table.replaceChildren();
  for (const [k, v, cls] of rows) {
    const tr = el("tr", cls ? { class: cls } : {});
    tr.appendChild(el("td", {}, k)); tr.appendChild(el("td", { class: "num" }, String(v)));
    table.appendChild(tr);
  }
}

function badge(node, text, cls) { node.textContent = text; node.className = "badge " + (cls || ""); }

function drawPanels(state) {
  $("source").textContent = state.source + (state.source_done ? " (read)" : "");
  $("utc").textContent = state.utc || "-";
  $("mission").textContent = state.mission_time || "-";
  const f = state.fdir;
  if (f) {
    badge($("mode"), f.mode, f.mode === "ACTIVE" ? "ok" : "warn");
    const iso = f.isolation_state;
    badge($("isolation"), iso, iso === "SEALED" ? "sealed" : iso === "IDLE" ? "ok" : iso === "FAILED" ? "bad" : "warn");
    kv($("fdir-table"), [
      ["mode", f.mode], ["isolation", iso], ["cycle", f.cycle],
      ["cycle time", f.cycle_time_us + " µs"], ["longest cycle", f.max_cycle_time_us + " µs"],
      ["overruns", f.overruns, f.overruns ? "warn" : ""], ["sensors failed", f.sensors_failed, f.sensors_failed ? "bad" : ""],
      ["housekeeping at", f.hk_utc]]);
  }
  const l = state.link;
  const age = l.last_packet_age_s;
  const live = state.source_done ? "capture read" : age === null ? "no data" : age > 3 ? `silent ${fmt(age, 0)} s` : "receiving";
  badge($("linkstate"), live, state.source_done ? "" : age !== null && age <= 3 ? "ok" : "bad");
  kv($("link-table"), [
    ["packets/s", fmt(l.packets_per_s, 1)], ["packets", l.packets], ["bytes", l.bytes],
    ["sequence gaps", l.sequence_gaps, l.sequence_gaps ? "bad" : ""],
    ["packets missing", l.packets_missing, l.packets_missing ? "bad" : ""],
    ["CRC errors", l.crc_errors, l.crc_errors ? "bad" : ""], ["malformed", l.malformed, l.malformed ? "bad" : ""],
    ["skipped bytes", l.skipped_bytes, l.skipped_bytes ? "bad" : ""],
    ["last packet", age === null ? "-" : fmt(age, 1) + " s ago"],
    ["device link", l.device_link_up === undefined ? "-" : l.device_link_up ? "up" : "DOWN", l.device_link_up === false ? "bad" : ""],
    ["device link errors", l.device_link_errors === undefined ? "-" : l.device_link_errors]]);
  const unack = state.alarms_unacknowledged === undefined ? state.alarms : state.alarms_unacknowledged;
  badge($("alarms"), String(unack), unack ? "bad" : "ok");
  $("alarms").title = `${state.alarms} alarms, ${unack} not acknowledged`;
  const acked = state.alarms - unack;
  if (acked !== view.acked) { view.acked = acked; markAcknowledged(); }
  drawCommands(state);
  const vt = $("valve-table").tBodies[0];
  vt.replaceChildren();
  for (const v of state.valves) {
    const tr = el("tr", v.agree === false || (v.health && v.health !== "OK") ? { class: "bad" } : {});
    for (const c of [v.id, v.module_b ? `${v.module_a} – ${v.module_b}` : `→ ${v.module_a}`, v.command || "-",
                     v.feedback === null ? "-" : fmt(v.feedback, 2) + " " + v.state, v.health || "-",
                     v.agree === false ? "disagrees" : ""]) tr.appendChild(el("td", {}, c));
    vt.appendChild(tr);
  }
  const st = $("sensor-table").tBodies[0];
  st.replaceChildren();
  const groups = new Map();
  for (const s of state.sensors) {
    if (!groups.has(s.module)) groups.set(s.module, []);
    groups.get(s.module).push(s);
  }
  for (const [module, sensors] of groups) {
    const tr = el("tr");
    tr.appendChild(el("td", { class: "module" }, module));
    for (const s of sensors) {
      const bad = s.health !== "OK", odd = s.sample_status && s.sample_status !== "OK";
      const unit = s.kind === "pressure" ? " Pa" : s.kind === "temperature" ? " K" : " kg/s";
      const digits = s.kind === "flow" ? 5 : s.kind === "temperature" ? 2 : 1;
      const short = s.id.startsWith(module + ".") ? s.id.slice(module.length + 1) : s.id;
      let text = `${short} ${s.value === null ? "-" : fmt(s.value, digits) + unit}`;
      if (odd) text += ` ${s.sample_status}`;
      if (bad) text += ` ${s.health}` + (s.bias === null ? "" : ` (bias ${fmt(s.bias, digits)}${unit})`);
      tr.appendChild(el("td", { class: bad ? "sensor bad" : odd ? "sensor warn" : "sensor", "data-sensor": s.id,
                                "data-health": s.health }, text));
    }
    st.appendChild(tr);
  }
  const lk = state.leak || {};
  const parts = [];
  if (lk.leak_located) parts.push(`located in ${lk.leak_located.subject}: hole ${fmt(lk.leak_located.hole_diameter_m * 1000, 2)} mm, ` +
    `reserve ${fmt(lk.leak_located.reserve_time_s / 3600, 1)} h, ${fmt(lk.leak_located.leak_rate_kg_s * 1000, 3)} g/s`);
  if (lk.segment_sealed) parts.push(`sealed ${lk.segment_sealed.subject} at ${lk.segment_sealed.utc}`);
  else if (lk.leak_confirmed) parts.push(`confirmed at ${lk.leak_confirmed.utc}`);
  if (lk.estimate_updated) parts.push(`latest estimate ${lk.estimate_updated.utc}: hole ${fmt(lk.estimate_updated.hole_diameter_m * 1000, 2)} mm` +
    (lk.estimate_updated.hole_rel_sd !== undefined ? ` ± ${fmt(lk.estimate_updated.hole_rel_sd * 100, 0)} %` : "") +
    `, reserve ${fmt(lk.estimate_updated.reserve_time_s / 3600, 1)} h`);
  $("leakline").textContent = parts.length ? "Leak " + parts.join("; ") : "";
  $("notes").textContent = (state.notes || []).slice(-5).join("\n");
}

// ---------------------------------------------------------------------------------------------
// commands (shown when the monitor has a telecommand link)

function drawCommands(state) {
  const c = state.commanding;
  const panel = $("commands");
  panel.hidden = !(c && c.enabled);
  if (panel.hidden) return;
  $("command-to").textContent = "telecommands to " + c.to;
  const mode = state.fdir ? state.fdir.mode : null;
  for (const b of panel.querySelectorAll("button.mode")) b.classList.toggle("current", b.dataset.mode.toUpperCase() === mode);
  const body = $("command-table").tBodies[0];
  body.replaceChildren();
  for (const a of c.actions.slice().reverse()) {
    const tr = el("tr", { "data-outcome": a.outcome, "data-command": a.text });
    tr.appendChild(el("td", {}, a.sent_utc));
    tr.appendChild(el("td", {}, `${a.text} (seq ${a.seq})`));
    const stages = el("td");
    if (!a.stages.length) stages.textContent = a.outcome === "not sent" ? (a.error || "") : "waiting for reports";
    a.stages.forEach((st, i) => {
      if (i) stages.appendChild(document.createTextNode(" · "));
      stages.appendChild(el("span", { class: st.failed ? "stage failed" : "stage" }, `${st.stage} ${st.text} (${fmt(st.rtt_s * 1000, 0)} ms)`));
    });
    tr.appendChild(stages);
    tr.appendChild(el("td", { class: "outcome " + a.outcome }, a.outcome));
    body.appendChild(tr);
  }
}

async function markAcknowledged() {
  // the log's rows are drawn once; which alarms an acknowledge covered is asked of the server
  const r = await (await fetch("api/events?since=0")).json();
  const acked = new Set(r.events.filter(e => e.acknowledged).map(e => String(e.seq)));
  for (const tr of $("event-table").tBodies[0].rows) tr.classList.toggle("acknowledged", acked.has(tr.dataset.seq));
}

async function sendCommand(action) {
  $("command-error").textContent = "";
  try {
    const r = await fetch("api/command", { method: "POST", headers: { "Content-Type": "application/json" },
                                           body: JSON.stringify(action) });
    const answer = await r.json();
    if (!r.ok) $("command-error").textContent = answer.error || `refused (${r.status})`;
  } catch (err) {
    $("command-error").textContent = "not sent: " + err;
  }
}

// ---------------------------------------------------------------------------------------------
// event log

function addEvents(events) {
  const body = $("event-table").tBodies[0];
  for (const e of events) {
    if (e.seq <= view.lastEventSeq) continue;
    view.lastEventSeq = e.seq;
    const tr = el("tr", { "data-seq": e.seq, "data-severity": e.severity, "data-alarm": e.alarm ? "1" : "0",
                          "data-event": e.name, class: e.acknowledged ? "acknowledged" : "" });
    tr.appendChild(el("td", {}, e.utc));
    tr.appendChild(el("td", {}, e.mission_time || "-"));
    const sev = el("td"); sev.appendChild(el("span", { class: "sev " + e.severity }, e.severity)); tr.appendChild(sev);
    tr.appendChild(el("td", {}, e.text));
    if (view.alarmsOnly && !e.alarm) tr.hidden = true;
    body.insertBefore(tr, body.firstChild);
  }
  while (body.rows.length > MAX_EVENT_ROWS) body.deleteRow(body.rows.length - 1);
}

// ---------------------------------------------------------------------------------------------
// plots

const PLOTS = {
  pressure: { div: "plot-pressure", title: "Pressure per module", y: "kPa", y2: "mmHg" },
  inventory: { div: "plot-inventory", title: "Temperature-compensated inventory, change since first report", y: "mol" },
  leak: { div: "plot-leak", title: "Leak rate of the segment, and the test statistic", y: "g/s", y2: "test statistic" },
  temperature: { div: "plot-temperature", title: "Gas temperature per module", y: "K" },
};

function emptySeries(modules) {
  const per = () => modules.map(() => []);
  return { modules, t: [], pressure_pa: per(), temperature_k: per(), inventory_mol: per(), leak_rate_kg_s: per(),
           stats: [], inventory_ref_mol: [] };
}

function appendSeries(dst, src) {
  for (const t of src.t) dst.t.push(t);
  for (const q of ["pressure_pa", "temperature_k", "inventory_mol", "leak_rate_kg_s"])
    src[q].forEach((arr, i) => { for (const v of arr) dst[q][i].push(v); });
  for (const s of src.stats) dst.stats.push(s);
  if (src.inventory_ref_mol && src.inventory_ref_mol.length) dst.inventory_ref_mol = src.inventory_ref_mol;
}

function trimSeries(s) {
  if (view.windowS === null || !s.t.length) return;
  const from = s.t[s.t.length - 1] - view.windowS;
  let k = 0;
  while (k < s.t.length && s.t[k] < from) k++;
  if (k) {
    s.t.splice(0, k);
    for (const q of ["pressure_pa", "temperature_k", "inventory_mol", "leak_rate_kg_s"]) s[q].forEach(a => a.splice(0, k));
  }
  let j = 0;
  while (j < s.stats.length && s.stats[j].utc_s < from) j++;
  if (j) s.stats.splice(0, j);
}

function baseLayout(p, y2) {
  const layout = {
    title: { text: p.title, font: { size: 13 }, x: 0.01 }, margin: { l: 58, r: y2 ? 58 : 12, t: 30, b: 34 },
    xaxis: { type: "date", automargin: true }, yaxis: { title: { text: p.y }, automargin: true },
    legend: { orientation: "h", y: -0.18, font: { size: 10 } }, showlegend: true, uirevision: "keep",
    paper_bgcolor: "#fff", plot_bgcolor: "#fff", font: { size: 11 },
  };
  if (y2) layout.yaxis2 = { title: { text: p.y2 }, overlaying: "y", side: "right", showgrid: false, automargin: true };
  return layout;
}

function minmax(arrays) {
  let lo = Infinity, hi = -Infinity;
  for (const a of arrays) for (const v of a) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

function drawPlots() {
  const s = view.series;
  if (!s) return;
  const x = s.t.map(t => t * 1000);
  const names = s.modules;
  const color = i => COLORS[i % COLORS.length];
  const kpa = s.pressure_pa.map(a => a.map(v => v / 1000));
  const pressure = names.map((n, i) => ({ type: "scatter", mode: "lines", name: n, x, y: kpa[i], line: { color: color(i), width: 1.5 },
    hovertemplate: "%{y:.3f} kPa<extra>" + n + "</extra>" }));
  const [lo, hi] = minmax(kpa);
  const pl = baseLayout(PLOTS.pressure, true);
  if (isFinite(lo)) {
    const pad = Math.max(0.05, (hi - lo) * 0.05);
    pl.yaxis.range = [lo - pad, hi + pad];
    pl.yaxis2.range = [(lo - pad) * KPA_TO_MMHG, (hi + pad) * KPA_TO_MMHG];
  }
  pl.yaxis2.tickformat = ".1f";
  // an invisible trace on the mmHg axis, so plotly draws that axis
  pressure.push({ type: "scatter", mode: "lines", x: x.length ? [x[0]] : [], y: x.length ? [kpa[0][0] * KPA_TO_MMHG] : [],
    yaxis: "y2", showlegend: false, hoverinfo: "skip", line: { width: 0 } });
  const ref = s.inventory_ref_mol || [];
  const inventory = names.map((n, i) => ({ type: "scatter", mode: "lines", name: n, x,
    y: s.inventory_mol[i].map(v => v - (ref[i] !== undefined ? ref[i] : s.inventory_mol[i][0])), line: { color: color(i), width: 1.5 } }));
  const leak = names.map((n, i) => ({ type: "scatter", mode: "lines", name: n, x, y: s.leak_rate_kg_s[i].map(v => v * 1000),
    line: { color: color(i), width: 1.5 } }));
  leak.push({ type: "scatter", mode: "markers", name: "test statistic", yaxis: "y2", x: s.stats.map(p => p.utc_s * 1000),
    y: s.stats.map(p => p.value), text: s.stats.map(p => p.subject), marker: { symbol: "diamond", size: 9, color: "#212529" },
    hovertemplate: "%{y:.2f} (%{text})<extra>test statistic</extra>" });
  const temperature = names.map((n, i) => ({ type: "scatter", mode: "lines", name: n, x, y: s.temperature_k[i],
    line: { color: color(i), width: 1.5 } }));
  const config = { displaylogo: false, responsive: true, showLink: false };
  Plotly.react(PLOTS.pressure.div, pressure, pl, config);
  Plotly.react(PLOTS.inventory.div, inventory, baseLayout(PLOTS.inventory), config);
  Plotly.react(PLOTS.leak.div, leak, baseLayout(PLOTS.leak, true), config);
  Plotly.react(PLOTS.temperature.div, temperature, baseLayout(PLOTS.temperature), config);
  $("plotinfo").textContent = `${s.t.length} points per module` + (view.windowS ? ` over ${view.windowS} s` : " (all)");
}

let drawPending = false;
function scheduleDraw() {
  // at most one redraw per 200 ms: a busy feed thins the drawing, never queues it
  if (drawPending) return;
  drawPending = true;
  setTimeout(() => { drawPending = false; drawPlots(); }, 200);
}

// ---------------------------------------------------------------------------------------------
// feed

function applyState(state) {
  drawPanels(state);
  drawDiagram(state);
}

function connect() {
  const url = new URL("ws", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  view.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ window_s: view.windowS, points: POINTS }));
  ws.onmessage = (msg) => {
    const m = JSON.parse(msg.data);
    if (m.type === "series") {
      view.series = m.series.modules ? Object.assign(emptySeries(m.series.modules), m.series) : null;
      scheduleDraw();
      fetch(`api/events?since=${view.lastEventSeq + 1}`).then(r => r.json()).then(r => addEvents(r.events));
    } else if (m.type === "update") {
      applyState(m.state);
      addEvents(m.events);
      if (m.series && m.series.t && m.series.t.length || m.series && m.series.stats && m.series.stats.length) {
        if (!view.series && m.series.modules && m.series.modules.length) view.series = emptySeries(m.series.modules);
        if (view.series) { appendSeries(view.series, m.series); trimSeries(view.series); scheduleDraw(); }
      }
    }
  };
  ws.onclose = () => { badge($("linkstate"), "monitor disconnected", "bad"); setTimeout(connect, 1000); };
}

async function start() {
  $("window").addEventListener("change", (ev) => {
    view.windowS = ev.target.value === "all" ? null : Number(ev.target.value);
    if (view.ws && view.ws.readyState === WebSocket.OPEN) view.ws.send(JSON.stringify({ window_s: view.windowS, points: POINTS }));
  });
  $("ack-all").addEventListener("click", () => sendCommand({ command: "ack", event: 0 }));
  for (const b of document.querySelectorAll("#commands button.mode"))
    b.addEventListener("click", () => sendCommand({ command: "mode", mode: b.dataset.mode }));
  $("alarms-only").addEventListener("change", (ev) => {
    view.alarmsOnly = ev.target.checked;
    for (const tr of $("event-table").tBodies[0].rows) tr.hidden = view.alarmsOnly && tr.dataset.alarm !== "1";
  });
  const state = await (await fetch("api/state?events=" + MAX_EVENT_ROWS)).json();
  applyState(state);
  addEvents(state.events);
  const series = await (await fetch(`api/series?window=${view.windowS}&points=${POINTS}`)).json();
  if (series.modules && series.modules.length) { view.series = Object.assign(emptySeries(series.modules), series); drawPlots(); }
  connect();
}

start();
