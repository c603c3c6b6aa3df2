// A call's detail view: its timelines as small SVG charts, redrawn at most once a second as
// events arrive; cues marked on the timeline with their evidence on click (and in a table).
"use strict";
(() => {
  const A = Attune;
  const NS = "http://www.w3.org/2000/svg";
  const callId = A.lastPathPart();
  const MAX_SNAPSHOTS = 3600, MAX_EMOTION = 7200, MAX_CUES = 1000;
  let snapshots = [], emotion = [], cues = new Map(), info = null, ended = false;
  let drawTimer = null;

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }

  function frame(id) {
    const node = document.getElementById(id);
    const w = node.clientWidth || 800, h = node.clientHeight || 140;
    node.setAttribute("viewBox", `0 0 ${w} ${h}`);
    node.replaceChildren();
    return { node, w, h, left: 42, right: w - 8, top: 6, bottom: h - 16 };
  }

  function endTime() {
    const last = snapshots.length ? snapshots[snapshots.length - 1].t_s : 0;
    return Math.max(10, last);
  }

  function axes(f, t1, yMin, yMax, unit) {
    f.node.append(svg("line", { class: "axis", x1: f.left, x2: f.right, y1: f.bottom, y2: f.bottom }));
    for (const v of [yMin, (yMin + yMax) / 2, yMax]) {
      const y = f.bottom - ((v - yMin) / (yMax - yMin)) * (f.bottom - f.top);
      f.node.append(svg("line", { class: "axis", x1: f.left, x2: f.right, y1: y, y2: y, "stroke-dasharray": "2 4" }));
      f.node.append(svg("text", { class: "tick", x: 2, y: y + 4 }, `${Math.round(v * 10) / 10}${unit || ""}`));
    }
    const step = t1 > 600 ? 120 : t1 > 120 ? 30 : 10;
    for (let t = 0; t <= t1; t += step) {
      const x = f.left + (t / t1) * (f.right - f.left);
      f.node.append(svg("text", { class: "tick", x: x - 8, y: f.h - 2 }, A.formatDuration(t)));
    }
  }

  function line(f, points, t1, yMin, yMax, cls, label) {
    let d = "", pen = false;
    for (const [t, v] of points) {
      if (v == null || !isFinite(v)) { pen = false; continue; }
      const x = f.left + (t / t1) * (f.right - f.left);
      const y = f.bottom - ((Math.min(yMax, Math.max(yMin, v)) - yMin) / (yMax - yMin)) * (f.bottom - f.top);
      d += `${pen ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
      pen = true;
    }
    const path = svg("path", { class: cls, d });
    path.append(svg("title", {}, label));
    f.node.append(path);
  }

  function xOf(f, t, t1) { return f.left + (t / t1) * (f.right - f.left); }

  function draw() {
    drawTimer = null;
    const t1 = endTime();
    const caller = emotion.filter((p) => p.party === "caller");
    const agent = emotion.filter((p) => p.party === "agent");

    let f = frame("chart-emotion");
    caller.forEach((p, i) => {
      if (!p.emotion) return;
      const t0 = i > 0 ? caller[i - 1].t_s : Math.max(0, p.t_s - 1);
      const band = svg("rect", { class: "band-" + p.emotion, x: xOf(f, t0, t1), y: f.top, width: Math.max(1, xOf(f, p.t_s, t1) - xOf(f, t0, t1)), height: f.bottom - f.top });
      band.append(svg("title", {}, `${A.formatDuration(p.t_s)} ${p.emotion} (${Math.round(p.confidence * 100)}% sure)`));
      f.node.append(band);
    });
    axes(f, t1, -1, 1);
    line(f, caller.map((p) => [p.t_s, p.emotion ? p.arousal : null]), t1, -1, 1, "s-caller", "caller arousal");
    line(f, caller.map((p) => [p.t_s, p.emotion ? p.valence : null]), t1, -1, 1, "s-valence", "caller valence");

    f = frame("chart-calm");
    axes(f, t1, 0, 100);
    line(f, agent.map((p) => [p.t_s, p.emotion ? p.calmness : null]), t1, 0, 100, "s-agent", "agent calmness");

    f = frame("chart-loud");
    axes(f, t1, -60, 0, "");
    line(f, snapshots.map((s) => [s.t_s, s.agent.loudness_db]), t1, -60, 0, "s-agent", "agent loudness");
    line(f, snapshots.map((s) => [s.t_s, s.caller.loudness_db]), t1, -60, 0, "s-caller", "caller loudness");

    f = frame("chart-pitch");
    axes(f, t1, 50, 400, "");
    line(f, snapshots.map((s) => [s.t_s, s.agent.pitch_hz]), t1, 50, 400, "s-agent", "agent pitch");
    line(f, snapshots.map((s) => [s.t_s, s.caller.pitch_hz]), t1, 50, 400, "s-caller", "caller pitch");

    f = frame("chart-ribbon");
    let prevT = 0;
    for (const s of snapshots) {
      const who = s.agent.talking && s.caller.talking ? "overlap" : s.agent.talking ? "agent" : s.caller.talking ? "caller" : "silence";
      const r = svg("rect", { class: "r-" + who, x: xOf(f, prevT, t1), y: f.top, width: Math.max(1, xOf(f, s.t_s, t1) - xOf(f, prevT, t1) + 0.5), height: f.bottom - f.top });
      r.append(svg("title", {}, `${A.formatDuration(s.t_s)} ${who}`));
      f.node.append(r);
      prevT = s.t_s;
    }
    const last = snapshots[snapshots.length - 1];
    if (last) {
      const t = last.dialog.talk;
      document.getElementById("talk-totals").textContent =
        `totals: agent ${t.agent_s.toFixed(0)} s, caller ${t.caller_s.toFixed(0)} s, overlap ${t.overlap_s.toFixed(0)} s, silence ${t.silence_s.toFixed(0)} s`;
    }

    f = frame("chart-cues");
    axes(f, t1, 0, 1);
    const lanes = [];
    for (const c of [...cues.values()].sort((a, b) => a.start_s - b.start_s)) {
      const end = c.closed_s != null ? c.closed_s : t1;
      let lane = lanes.findIndex((e) => e <= c.start_s);
      if (lane < 0) { lane = lanes.length; lanes.push(0); }
      lanes[lane] = end;
      const laneH = 14, y = f.top + (lane % 3) * (laneH + 2);
      const x = xOf(f, c.start_s, t1), w = Math.max(6, xOf(f, end, t1) - x);
      const g = svg("g", { class: "cue-mark", tabindex: "0", role: "button", "aria-label": `${c.severity} ${A.cueName(c.kind)} at ${A.formatDuration(c.start_s)}` });
      g.append(svg("rect", { class: "cue-" + c.severity, x, y, width: w, height: laneH, rx: 3 }));
      g.append(svg("text", { class: "cue-label", x: x + 3, y: y + 11 }, `${(A.SEVERITY[c.severity] || {}).icon || ""} ${A.cueName(c.kind)}`));
      g.append(svg("title", {}, `${A.severityText(c.severity)}: ${A.cueName(c.kind)} — ${c.evidence.rule}`));
      g.addEventListener("click", () => showEvidence(c));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") showEvidence(c); });
      f.node.append(g);
    }
    renderCueTable();
  }

  function evidenceText(c) {
    return `${c.evidence.rule}\n` + c.evidence.values.map((v) => `  ${v.name} = ${Math.round(v.value * 100) / 100}`).join("\n");
  }

  function showEvidence(c) {
    document.getElementById("evidence").textContent =
      `${A.severityText(c.severity)} \u2014 ${A.cueName(c.kind)} (${c.party}), ${A.formatDuration(c.start_s)}\u2013${c.closed_s != null ? A.formatDuration(c.closed_s) : "open"}\n` +
      evidenceText(c) + (c.guidance ? `\nGuidance: ${c.guidance}` : "");
  }

  function renderCueTable() {
    const rows = [...cues.values()].sort((a, b) => b.start_s - a.start_s).slice(0, 300).map((c) =>
      A.el("tr", {},
        A.el("td", { text: A.formatDuration(c.start_s) }),
        A.el("td", { text: A.severityText(c.severity) }),
        A.el("td", { text: `${A.cueName(c.kind)} (${c.party})` }),
        A.el("td", { text: c.closed_s != null ? `closed at ${A.formatDuration(c.closed_s)}` : "open" }),
        A.el("td", { class: "evidence", text: evidenceText(c) })));
    document.getElementById("cue-rows").replaceChildren(...rows);
  }

  function scheduleDraw() { if (!drawTimer) drawTimer = setTimeout(draw, 1000); }

  function addCue(c) {
    if (c.event === "open") {
      cues.set(c.cue_id, Object.assign({}, c, { closed_s: null }));
      if (cues.size > MAX_CUES) cues.delete(cues.keys().next().value);
    } else {
      const open = cues.get(c.cue_id);
      if (open) open.closed_s = c.end_s; else cues.set(c.cue_id, Object.assign({}, c, { closed_s: c.end_s }));
    }
  }

  function updateSummary() {
    if (!info) return;
    const last = snapshots[snapshots.length - 1];
    const callerPoint = last ? last.caller_emotion : null;
    const open = [...cues.values()].filter((c) => c.closed_s == null).length;
    document.getElementById("summary").textContent =
      `Agent ${info.agent_id}, team ${info.team}. ${ended ? "Call ended" : "Live"}, ${A.formatDuration(last ? last.t_s : 0)} analysed. ` +
      `Caller: ${A.callerState(callerPoint).text}. Agent calmness: ${A.calmnessState(last ? last.agent_calmness : null).text}. Open cues: ${open}.`;
  }

  async function sync() {
    let r;
    try { r = await A.fetchJSON("/api/calls/" + encodeURIComponent(callId)); } catch (e) { return; }
    if (r.status === 404) {
      document.getElementById("summary").textContent = `Call ${callId} is no longer known to the server (it ended a while ago, or the server restarted).`;
      return;
    }
    if (!r.ok) return;
    info = r.body.view.call;
    ended = !r.body.view.live;
    document.getElementById("title").textContent = `Call ${callId}`;
    document.title = `Call ${callId} \u2014 Attune`;
    snapshots = r.body.snapshots.slice(-MAX_SNAPSHOTS);
    emotion = r.body.emotion.slice(-MAX_EMOTION);
    cues = new Map();
    for (const c of r.body.cues) addCue(c);
    updateSummary();
    draw();
  }

  function onEvent(name, data) {
    if (data.call && data.call.call_id !== callId) return;
    if (name === "snapshot") { snapshots.push(data); if (snapshots.length > MAX_SNAPSHOTS) snapshots.shift(); }
    else if (name === "emotion") { emotion.push(data); if (emotion.length > MAX_EMOTION) emotion.shift(); }
    else if (name === "cue") addCue(data);
    else if (name === "call_ended") ended = true;
    else return;
    updateSummary();
    scheduleDraw();
    A.recordRendered(data.published_at_unix_ms);
  }

  window.addEventListener("resize", scheduleDraw);
  A.connect("call_id=" + encodeURIComponent(callId), { onSync: sync, onEvent });
})();
