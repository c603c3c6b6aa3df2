// The live wall: one card per live call, updated in place from server-sent events, and
// re-ordered (at most twice a second) so calls needing attention come first. The attention
// score is the server's: every call view and every event carries it (`attention`).
"use strict";
(() => {
  const A = Attune;
  const wall = document.getElementById("wall");
  const empty = document.getElementById("empty");
  const summary = document.getElementById("summary");
  const teamSelect = document.getElementById("team");
  const team = A.param("team");
  const MAX_CHIPS = 6;
  const calls = new Map(); // call_id -> state
  const teams = new Set();
  let reorderTimer = null;

  function addTeam(name) {
    if (!name || teams.has(name)) return;
    teams.add(name);
    teamSelect.append(A.el("option", { value: name, text: name }));
    if (name === team) teamSelect.value = team;
  }
  teamSelect.addEventListener("change", () => {
    location.search = teamSelect.value ? "?team=" + encodeURIComponent(teamSelect.value) : "";
  });
  addTeam(team);

  function createCall(info) {
    const link = A.el("a", { href: "/calls/" + encodeURIComponent(info.call_id), text: info.agent_id });
    const attn = A.el("span", { class: "attn" });
    const duration = A.el("span", { class: "duration" });
    const caller = A.el("dd", { class: "caller" });
    const meter = A.el("meter", { min: "0", max: "100", low: "40", high: "60", optimum: "100", "aria-hidden": "true" });
    const calmText = A.el("span");
    const calm = A.el("dd", { class: "calm" }, meter, " ", calmText);
    const cues = A.el("ul", { class: "cues", "aria-label": "Open cues" });
    const node = A.el("li", { class: "call", "data-call-id": info.call_id },
      A.el("h2", {}, link, attn),
      A.el("p", { class: "team" }, `Team ${info.team} \u00B7 `, duration, A.el("span", { class: "sr-only", text: " call " + info.call_id })),
      A.el("dl", {}, A.el("dt", { text: "Caller" }), caller, A.el("dt", { text: "Agent calmness" }), calm),
      cues);
    const state = {
      info, node, attn, duration, caller, meter, calmText, calm, cues,
      callerPoint: null, calmness: null, openCues: new Map(), attention: 0, score: 0, ended: false,
      cueKey: null, rendered: false,
    };
    calls.set(info.call_id, state);
    addTeam(info.team);
    wall.append(node);
    return state;
  }

  function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
  function setClass(node, cls) { if (node.className !== cls) node.className = cls; }

  // Updates one card in place, touching only what changed; re-orders the wall only when the
  // call's attention score (the server's) changed.
  function render(s) {
    const caller = A.callerState(s.callerPoint);
    setText(s.caller, caller.text);
    setClass(s.caller, "caller " + caller.cls);
    const calm = A.calmnessState(s.calmness);
    setText(s.calmText, calm.text);
    setClass(s.calm, "calm " + calm.cls);
    if (s.calmness == null) s.meter.removeAttribute("value");
    else if (s.meter.value !== s.calmness) s.meter.value = s.calmness;
    const cues = [...s.openCues.values()];
    const cueKey = cues.map((c) => c.cue_id).sort((a, b) => a - b).join(",");
    if (cueKey !== s.cueKey) {
      s.cueKey = cueKey;
      cues.sort((a, b) =>
        (b.severity === "critical") - (a.severity === "critical") || (b.severity === "warning") - (a.severity === "warning") || a.cue_id - b.cue_id);
      const chips = cues.slice(0, MAX_CHIPS).map(A.cueChip);
      if (cues.length > MAX_CHIPS) chips.push(A.el("li", { class: "cue more", text: `+${cues.length - MAX_CHIPS} more` }));
      s.cues.replaceChildren(...chips);
    }
    const score = s.attention;
    if (score === s.score && s.rendered) return;
    s.score = score;
    s.rendered = true;
    const level = s.score >= 1000 ? "critical" : s.score >= 100 ? "warning" : "";
    s.node.classList.toggle("attn-critical", level === "critical");
    s.node.classList.toggle("attn-warning", level === "warning");
    setClass(s.attn, "attn " + level);
    setText(s.attn, level === "critical" ? "\u203C Needs attention" : level === "warning" ? "\u26A0 Watch" : "");
    scheduleReorder();
  }

  function scheduleReorder() {
    if (reorderTimer) return;
    reorderTimer = setTimeout(reorder, 500);
  }

  function reorder() {
    reorderTimer = null;
    const ordered = [...calls.values()].sort((a, b) =>
      b.score - a.score || a.info.started_at_unix_ms - b.info.started_at_unix_ms || (a.info.call_id < b.info.call_id ? -1 : 1));
    let current = wall.firstElementChild;
    for (const s of ordered) {
      if (current === s.node) current = current.nextElementSibling;
      else wall.insertBefore(s.node, current);
    }
    updateSummary();
  }

  function updateSummary() {
    const live = [...calls.values()].filter((s) => !s.ended);
    const attention = live.filter((s) => s.score >= 100).length;
    empty.hidden = live.length > 0;
    summary.textContent = `${live.length} live call${live.length === 1 ? "" : "s"}${team ? " in team " + team : ""}; ${attention} need${attention === 1 ? "s" : ""} attention.`;
  }

  function removeCall(s) {
    calls.delete(s.info.call_id);
    s.node.remove();
    updateSummary();
  }

  function endCall(s) {
    s.ended = true;
    s.node.classList.add("ended");
    s.attn.className = "attn";
    s.attn.textContent = "Ended";
    setTimeout(() => { if (calls.get(s.info.call_id) === s) removeCall(s); }, 4000);
    updateSummary();
  }

  function applyView(view) {
    const s = calls.get(view.call.call_id) || createCall(view.call);
    const latest = view.latest;
    s.callerPoint = latest ? latest.caller_emotion : null;
    s.calmness = latest ? latest.agent_calmness : null;
    s.openCues = new Map(view.open_cues.map((c) => [c.cue_id, c]));
    s.attention = view.attention;
    render(s);
  }

  async function sync() {
    const query = team ? "?team=" + encodeURIComponent(team) : "";
    let response;
    try { response = await A.fetchJSON("/api/calls" + query); } catch (e) { return; }
    if (!response.ok) return;
    const present = new Set();
    for (const view of response.body.calls) {
      present.add(view.call.call_id);
      applyView(view);
    }
    for (const s of [...calls.values()]) if (!present.has(s.info.call_id) && !s.ended) removeCall(s);
    reorder();
  }

  // Events only update a call's state; its card is redrawn once per animation frame however many
  // events arrived for it.
  const dirty = new Set();
  let frameRequested = false;
  function renderSoon(s) {
    dirty.add(s);
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(() => {
      frameRequested = false;
      for (const d of dirty) if (calls.get(d.info.call_id) === d) render(d);
      dirty.clear();
    });
  }

  function onEvent(name, data) {
    if (name === "ack") return;
    const id = data.call.call_id;
    let s = calls.get(id);
    if (!s) {
      if (name === "call_ended") return;
      s = createCall(data.call);
    }
    if (name !== "call_ended" && typeof data.attention === "number") s.attention = data.attention;
    switch (name) {
      case "snapshot":
        s.callerPoint = data.caller_emotion;
        s.calmness = data.agent_calmness;
        s.openCues = new Map(data.open_cues.map((c) => [c.cue_id, c]));
        break;
      case "emotion":
        if (data.party === "caller") s.callerPoint = data;
        else if (data.emotion) s.calmness = data.calmness;
        break;
      case "cue":
        if (data.event === "open") s.openCues.set(data.cue_id, data); else s.openCues.delete(data.cue_id);
        break;
      case "call_ended":
        endCall(s);
        A.recordRendered(data.published_at_unix_ms);
        return;
      default:
        break;
    }
    renderSoon(s);
    A.recordRendered(data.published_at_unix_ms);
  }

  setInterval(() => {
    const now = Date.now();
    for (const s of calls.values()) {
      if (!s.ended) s.duration.textContent = A.formatDuration((now - s.info.started_at_unix_ms) / 1000);
    }
  }, 1000);

  A.connect(team ? "team=" + encodeURIComponent(team) : "", { onSync: sync, onEvent });
  updateSummary();
})();
