// The agent's own view: their current call only (the server filters the stream by agent id) —
// the caller's state, a gentle calmness gauge and the current tone alerts with guidance; after a
// hard call (or a straining shift), a "take a moment" panel that stays until the next call starts.
"use strict";
(() => {
  const A = Attune;
  const agentId = A.lastPathPart();
  let current = null; // {call, callerPoint, calmness, openCues: Map}
  const notice = document.getElementById("notice");
  document.getElementById("title").textContent = `Attune \u00B7 ${agentId}`;

  function showNoCall() {
    current = null;
    notice.hidden = false;
    notice.textContent = `No call for agent ${agentId} right now. This page will show your next call when it starts.`;
    document.getElementById("call-panel").hidden = true;
    document.getElementById("tips-panel").hidden = true;
  }

  function render() {
    if (!current) return showNoCall();
    notice.hidden = true;
    document.getElementById("call-panel").hidden = false;
    document.getElementById("tips-panel").hidden = false;
    const caller = A.callerState(current.callerPoint);
    const callerNode = document.getElementById("caller");
    callerNode.textContent = caller.text;
    callerNode.className = "big " + caller.cls;
    const calm = A.calmnessState(current.calmness);
    document.getElementById("calm-text").textContent = current.calmness == null ? "listening\u2026" : `You sound ${calm.word} (${Math.round(current.calmness)}/100)`;
    const gauge = document.getElementById("gauge");
    gauge.setAttribute("class", "gauge " + (calm.cls === "calm-low" ? "low" : calm.cls === "calm-mid" ? "mid" : ""));
    document.getElementById("gauge-fill").setAttribute("stroke-dasharray", `${Math.round(current.calmness || 0)} 100`);
    const tips = [...current.openCues.values()].filter((c) => !A.SUPERVISOR_ONLY.has(c.kind))
      .sort((a, b) => b.t_s - a.t_s)
      .map((c) => A.el("li", { class: `cue-tip panel`, "data-cue-id": String(c.cue_id) },
        A.el("strong", { text: `${(A.SEVERITY[c.severity] || {}).icon || ""} ${A.cueName(c.kind)}` }),
        A.el("p", { class: "guidance", text: c.guidance || "" })));
    document.getElementById("tips").replaceChildren(...tips);
    document.getElementById("no-tips").hidden = tips.length > 0;
  }

  function adopt(view) {
    current = {
      call: view.call,
      callerPoint: view.latest ? view.latest.caller_emotion : null,
      calmness: view.latest ? view.latest.agent_calmness : null,
      openCues: new Map(view.open_cues.map((c) => [c.cue_id, c])),
    };
  }

  async function sync() {
    let r;
    try { r = await A.fetchJSON("/api/calls?agent_id=" + encodeURIComponent(agentId)); } catch (e) { return; }
    if (!r.ok) return;
    const calls = r.body.calls.filter((v) => v.call.agent_id === agentId)
      .sort((a, b) => b.call.started_at_unix_ms - a.call.started_at_unix_ms);
    if (calls.length) adopt(calls[0]); else current = null;
    render();
  }

  function showMoment(cue) {
    const panel = document.getElementById("moment-panel");
    panel.hidden = !cue;
    if (!cue) return;
    document.getElementById("moment-text").textContent = cue.guidance || "Take a moment before the next call.";
    document.getElementById("moment-why").textContent = cue.evidence.rule.split(" (")[0];
  }

  function onEvent(name, data) {
    if (!data.call || data.call.agent_id !== agentId) return;
    if (name === "cue" && data.kind === "agent_take_a_moment" && data.event === "open") showMoment(data);
    if (name === "call_started") {
      showMoment(null);
      adopt({ call: data.call, latest: null, open_cues: [] });
    } else {
      if (!current || current.call.call_id !== data.call.call_id) return;
      if (name === "snapshot") {
        current.callerPoint = data.caller_emotion;
        current.calmness = data.agent_calmness;
        current.openCues = new Map(data.open_cues.map((c) => [c.cue_id, c]));
      } else if (name === "emotion") {
        if (data.party === "caller") current.callerPoint = data;
        else if (data.emotion) current.calmness = data.calmness;
      } else if (name === "cue") {
        if (data.event === "open") current.openCues.set(data.cue_id, data); else current.openCues.delete(data.cue_id);
      } else if (name === "call_ended") {
        current = null;
      }
    }
    render();
    A.recordRendered(data.published_at_unix_ms);
  }

  A.connect("agent_id=" + encodeURIComponent(agentId), { onSync: sync, onEvent });
})();
