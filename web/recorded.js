// Recorded calls: stored calls (live calls at their end, scored recordings) with the filters of
// `attune calls`, each opening its QA report; upload of a WAV recording to score.
"use strict";

(() => {
  const { el, formatDuration, fetchJSON } = Attune;
  const FILTERS = ["agent", "team", "from", "to", "min_score", "max_score", "agent_interruptions_over"];
  const form = document.getElementById("filters");
  const tbody = document.getElementById("calls");
  const summary = document.getElementById("summary");
  const noStore = document.getElementById("no-store");
  const uploadStatus = document.getElementById("upload-status");

  // Filters live in the page's address, so a filtered list can be shared.
  function readAddress() {
    const p = new URLSearchParams(location.search);
    for (const name of FILTERS) document.getElementById(name).value = p.get(name) || "";
    document.getElementById("caller_ended_upset").checked = p.get("caller_ended_upset") === "true";
  }

  function query() {
    const p = new URLSearchParams();
    for (const name of FILTERS) {
      const v = document.getElementById(name).value.trim();
      if (v) p.set(name, v);
    }
    if (document.getElementById("caller_ended_upset").checked) p.set("caller_ended_upset", "true");
    return p;
  }

  function scoreText(row) {
    if (row.score_pct == null) return "not applicable";
    return `${row.score_pct.toFixed(1)} %${row.auto_fail ? " (automatic fail)" : ""}`;
  }

  function render(calls, highlight) {
    tbody.replaceChildren();
    if (!calls.length) {
      tbody.append(el("tr", {}, el("td", { colspan: "10", class: "empty", text: "No stored call matches these filters." })));
    }
    for (const c of calls) {
      const report = el("a", { href: `/recorded/${encodeURIComponent(c.call_id)}`, text: "QA report" });
      const tr = el("tr", { "data-call-id": c.call_id, class: c.call_id === highlight ? "new" : "" },
        el("td", { text: c.call_at.replace("T", " ").replace(/\.\d+Z$/, "") }),
        el("td", { text: c.source }),
        el("td", { class: "agent", text: c.agent || "–" }),
        el("td", { text: c.team || "–" }),
        el("td", { text: formatDuration(c.duration_s) }),
        el("td", { class: "score", text: scoreText(c) }),
        el("td", { text: String(c.agent_interruptions) }),
        el("td", { text: c.caller_ended_upset ? "upset" : (c.caller_end_emotion || "–") }),
        el("td", { text: String(c.cue_count) }),
        el("td", {}, report));
      tr.title = c.recording || c.call_id;
      tbody.append(tr);
    }
  }

  async function load(highlight) {
    const p = query();
    history.replaceState(null, "", p.toString() ? `?${p}` : location.pathname);
    let r;
    try {
      r = await fetchJSON(`/api/recorded?${p}`);
    } catch (e) {
      summary.textContent = `Cannot reach the server: ${e}`;
      return;
    }
    if (r.status === 503) {
      noStore.hidden = false;
      noStore.textContent = r.body && r.body.error ? r.body.error : "No database is configured.";
      form.hidden = true;
      document.getElementById("upload").hidden = true;
      summary.textContent = "";
      tbody.replaceChildren();
      return;
    }
    if (!r.ok) {
      summary.textContent = `Cannot list the calls: ${r.body && r.body.error ? r.body.error : r.status}`;
      return;
    }
    summary.textContent = `${r.body.calls.length} stored call${r.body.calls.length === 1 ? "" : "s"}`;
    render(r.body.calls, highlight);
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  form.addEventListener("reset", () => setTimeout(() => load(), 0));

  document.getElementById("upload").addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = document.getElementById("file").files[0];
    if (!file) { uploadStatus.textContent = "Choose a WAV file first."; return; }
    const p = new URLSearchParams({ name: file.name });
    const agent = document.getElementById("up-agent").value.trim();
    const team = document.getElementById("up-team").value.trim();
    if (agent) p.set("agent", agent);
    if (team) p.set("team", team);
    p.set("agent_channel", document.getElementById("up-channel").value);
    const button = document.getElementById("upload-button");
    button.disabled = true;
    uploadStatus.className = "";
    uploadStatus.textContent = `Scoring ${file.name}…`;
    try {
      const response = await fetch(`/api/recordings?${p}`, {
        method: "POST", body: file, headers: Attune.withCsrf({ "Content-Type": "audio/wav" }),
      });
      let body = null;
      try { body = await response.json(); } catch (_) { body = null; }
      if (!response.ok) {
        uploadStatus.className = "error";
        uploadStatus.textContent = `Not scored: ${body && body.error ? body.error : `HTTP ${response.status}`}`;
        return;
      }
      uploadStatus.replaceChildren(
        `Scored ${body.name}: ${body.score_pct == null ? "not applicable" : body.score_pct.toFixed(1) + " %"}${body.auto_fail ? " (automatic fail)" : ""} · `,
        el("a", { href: body.report_url, id: "uploaded-report", text: "open its QA report" }));
      await load(body.call_id);
    } catch (err) {
      uploadStatus.className = "error";
      uploadStatus.textContent = `Upload failed: ${err}`;
    } finally {
      button.disabled = false;
    }
  });

  readAddress();
  load();
})();
