// The alert feed across calls (cue openings), newest first, filterable by team and severity;
// an alert can be acknowledged, and acknowledgements from any console show up live.
"use strict";
(() => {
  const A = Attune;
  const MAX_ROWS = 500;
  const team = A.param("team"), severity = A.param("severity");
  document.getElementById("team").value = team;
  document.getElementById("severity").value = severity;
  const tbody = document.getElementById("alerts");
  const rows = new Map(); // "call_id/cue_id" -> {alert, tr, state, ack}

  const key = (callId, cueId) => `${callId}/${cueId}`;

  function matches(call, cue) {
    return (!team || call.team === team) && (!severity || cue.severity === severity);
  }

  function renderAck(r) {
    const ack = r.alert.ack;
    if (ack) {
      r.tr.classList.add("acked");
      r.ackCell.replaceChildren(`\u2714 by ${ack.by || "a supervisor"} at ${A.formatClock(ack.at_unix_ms)}`);
    } else {
      const button = A.el("button", { type: "button", text: "Acknowledge" });
      button.addEventListener("click", () => acknowledge(r, button));
      r.ackCell.replaceChildren(button);
    }
  }

  function renderState(r) {
    r.stateCell.textContent = r.alert.closed_at_s != null ? `closed at ${A.formatDuration(r.alert.closed_at_s)}` : "open";
  }

  function row(alert, prepend) {
    const k = key(alert.call.call_id, alert.cue.cue_id);
    if (rows.has(k)) return rows.get(k);
    const stateCell = A.el("td"), ackCell = A.el("td");
    const c = alert.cue;
    const tr = A.el("tr", { "data-alert": k, class: "sev-" + c.severity },
      A.el("td", { text: A.formatClock(alert.opened_at_unix_ms) }),
      A.el("td", { text: A.severityText(c.severity) }),
      A.el("td", {}, A.el("strong", { text: A.cueName(c.kind) }), A.el("div", { class: "guidance", text: c.evidence.rule })),
      A.el("td", {}, A.el("a", { href: "/calls/" + encodeURIComponent(alert.call.call_id), text: alert.call.call_id }), ` \u00B7 ${alert.call.agent_id} \u00B7 team ${alert.call.team}`),
      stateCell, ackCell);
    const r = { alert, tr, stateCell, ackCell };
    rows.set(k, r);
    if (prepend) tbody.prepend(tr); else tbody.append(tr);
    renderState(r);
    renderAck(r);
    while (rows.size > MAX_ROWS) {
      const oldest = tbody.lastElementChild;
      rows.delete(oldest.dataset.alert);
      oldest.remove();
    }
    return r;
  }

  async function acknowledge(r, button) {
    button.disabled = true;
    try {
      // Who acknowledges is the signed-in person: the server takes it from the session.
      const res = await A.fetchJSON(`/api/alerts/${encodeURIComponent(r.alert.call.call_id)}/${r.alert.cue.cue_id}/ack`,
        { method: "POST" });
      if (res.ok) { r.alert.ack = res.body; renderAck(r); }
      else { button.disabled = false; button.title = res.body.error || "failed"; }
    } catch (e) { button.disabled = false; }
  }

  function summary() {
    const open = [...rows.values()].filter((r) => r.alert.closed_at_s == null).length;
    const unacked = [...rows.values()].filter((r) => !r.alert.ack).length;
    document.getElementById("summary").textContent =
      `${rows.size} alert${rows.size === 1 ? "" : "s"}${team ? " in team " + team : ""}${severity ? ", " + severity + " only" : ""}: ${open} still open, ${unacked} not acknowledged.`;
  }

  async function sync() {
    const q = new URLSearchParams();
    if (team) q.set("team", team);
    if (severity) q.set("severity", severity);
    let r;
    try { r = await A.fetchJSON("/api/alerts?" + q.toString()); } catch (e) { return; }
    if (!r.ok) { document.getElementById("summary").textContent = r.body.error || "cannot load alerts"; return; }
    rows.clear();
    tbody.replaceChildren();
    for (const alert of r.body.alerts) row(alert, false);
    summary();
  }

  function onEvent(name, data) {
    if (name === "cue") {
      if (!matches(data.call, data)) return;
      if (data.event === "open") {
        const cue = Object.assign({}, data);
        delete cue.call; delete cue.seq; delete cue.published_at_unix_ms; delete cue.type;
        row({ call: data.call, cue, opened_at_unix_ms: data.published_at_unix_ms, closed_at_s: null, ack: null }, true);
      } else {
        const r = rows.get(key(data.call.call_id, data.cue_id));
        if (r) { r.alert.closed_at_s = data.end_s; renderState(r); }
      }
      summary();
      A.recordRendered(data.published_at_unix_ms);
    } else if (name === "ack") {
      const r = rows.get(key(data.call.call_id, data.cue_id));
      if (r) { r.alert.ack = data; renderAck(r); summary(); }
    }
  }

  const q = new URLSearchParams();
  if (team) q.set("team", team);
  A.connect(q.toString(), { onSync: sync, onEvent });
})();
