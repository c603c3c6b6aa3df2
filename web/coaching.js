// Coaching: the roster (/coaching) and an agent's or a team's view (/coaching/agent/ID,
// /coaching/team/T): the trend of one measure per day, week or month against the team (an
// SVG line chart), the figures per period, the QA items' pass rates over the range, a team's
// agents, and the moments to review, each opening its call's report on the timeline and, with a
// recording, playing the audio around the moment.
"use strict";

(() => {
  const { el, fetchJSON } = Attune;
  const noStore = document.getElementById("no-store");
  const MEASURES = {
    mean_score_pct: "QA score (%)",
    mean_active_listening: "Active listening",
    mean_attunement: "Attunement",
    mean_de_escalation: "De-escalation",
    mean_agent_calmness_min: "Lowest agent calmness",
  };
  const MEASURE_OF_MOMENT = {
    active_listening: "Active listening",
    attunement: "Attunement",
    de_escalation: "De-escalation",
  };
  const num = (v, digits) => (v == null ? "–" : Number(v).toFixed(digits == null ? 1 : digits));
  const when = (t) => String(t || "").replace("T", " ").replace(/\.\d+Z$/, "").replace(/Z$/, "");

  function showError(status, body) {
    noStore.hidden = false;
    noStore.textContent = (body && body.error) || `The server answered ${status}.`;
  }

  // --- the roster -------------------------------------------------------------------------
  async function roster() {
    document.getElementById("roster").hidden = false;
    const r = await fetchJSON("/api/coaching/roster");
    if (!r.ok) return showError(r.status, r.body);
    const teams = document.getElementById("teams");
    const agents = document.getElementById("agents");
    teams.replaceChildren();
    agents.replaceChildren();
    if (!r.body.teams.length) teams.append(el("tr", {}, el("td", { colspan: "4", class: "empty", text: "No stored call of a team you may read." })));
    for (const t of r.body.teams) {
      teams.append(el("tr", { "data-team": t.team },
        el("td", {}, el("a", { href: `/coaching/team/${encodeURIComponent(t.team)}`, text: t.team })),
        el("td", { text: String(t.agents) }),
        el("td", { text: String(t.calls) }),
        el("td", { text: when(t.last_call_at) })));
    }
    const withAgent = r.body.agents.filter((a) => a.agent);
    if (!withAgent.length) agents.append(el("tr", {}, el("td", { colspan: "4", class: "empty", text: "No stored call with an agent." })));
    for (const a of withAgent) {
      agents.append(el("tr", { "data-agent": a.agent },
        el("td", {}, el("a", { href: `/coaching/agent/${encodeURIComponent(a.agent)}`, text: a.agent })),
        el("td", { text: a.team || "–" }),
        el("td", { text: String(a.calls) }),
        el("td", { text: when(a.last_call_at) })));
    }
  }

  // --- the trend chart --------------------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }

  // lines: [{ name, cls, points: Map(period -> value) }]
  function drawChart(periods, lines, measure) {
    const box = document.getElementById("chart");
    box.replaceChildren();
    const W = 720, H = 220, L = 44, R = 44, T = 10, B = 34;
    const values = lines.flatMap((l) => [...l.points.values()]).filter((v) => v != null);
    if (!periods.length || !values.length) {
      box.append(el("p", { class: "empty", text: "No scored call in this range." }));
      return;
    }
    const top = measure === "mean_score_pct" || measure === "mean_agent_calmness_min" ? 100 : Math.max(1, ...values);
    const x = (i) => L + (periods.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (periods.length - 1));
    const y = (v) => T + (H - T - B) * (1 - Math.min(v, top) / top);
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": `${MEASURES[measure]} per period`, id: "trend", style: "max-width: 760px" });
    chart.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
    chart.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
    for (const v of [0, top / 2, top]) {
      chart.append(svg("text", { class: "tick", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, num(v, top > 10 ? 0 : 1)));
    }
    const every = Math.max(1, Math.ceil(periods.length / 8));
    periods.forEach((p, i) => {
      if (i % every === 0 || i === periods.length - 1) {
        chart.append(svg("text", { class: "tick", x: x(i), y: H - B + 16, "text-anchor": "middle" }, p));
      }
    });
    for (const line of lines) {
      const pts = periods.map((p, i) => [i, line.points.get(p)]).filter(([, v]) => v != null);
      if (pts.length > 1) {
        chart.append(svg("polyline", {
          class: `trend-line ${line.cls}`, fill: "none", "stroke-width": line.cls === "subject" ? 2.5 : 1.5,
          stroke: line.cls === "subject" ? "#6f42c1" : "#59636e", "stroke-dasharray": line.cls === "subject" ? "" : "5 4",
          points: pts.map(([i, v]) => `${x(i)},${y(v)}`).join(" "),
        }));
      }
      for (const [i, v] of pts) {
        const dot = svg("circle", { class: `trend-point ${line.cls}`, cx: x(i), cy: y(v), r: line.cls === "subject" ? 4 : 3,
          fill: line.cls === "subject" ? "#6f42c1" : "#59636e", "data-period": periods[i], "data-value": String(v) });
        dot.append(svg("title", {}, `${line.name} · ${periods[i]}: ${num(v)}`));
        chart.append(dot);
      }
    }
    box.append(chart);
    document.getElementById("legend").textContent = lines.map((l) => (l.cls === "subject" ? `━ ${l.name}` : `┅ ${l.name}`)).join("   ");
  }

  // --- an agent's or a team's view --------------------------------------------------------
  const audio = document.getElementById("moment-audio");
  const momentNote = document.getElementById("moment-note");
  audio.addEventListener("error", () => {
    momentNote.textContent = "The recording cannot be played" + (audio.error ? ` (media error ${audio.error.code})` : "") + ".";
  });

  function play(url, label) {
    momentNote.textContent = `Playing ${label}`;
    audio.src = url;
    const playing = audio.play();
    if (playing && playing.catch) playing.catch((e) => { momentNote.textContent = `Cannot play the recording: ${e.message}`; });
  }

  function itemTotals(series) {
    const totals = new Map();
    for (const p of series) {
      for (const [id, t] of Object.entries(p.items || {})) {
        const s = totals.get(id) || { passed: 0, failed: 0 };
        s.passed += t.passed;
        s.failed += t.failed;
        totals.set(id, s);
      }
    }
    return totals;
  }
  const rate = (t) => (t && t.passed + t.failed ? `${((100 * t.passed) / (t.passed + t.failed)).toFixed(0)} %` : "–");

  function render(s, measure) {
    const subjectName = s.subject === "agent" ? `Agent ${s.id}` : `Team ${s.id}`;
    document.getElementById("subject-title").textContent = `${subjectName} · ${s.from} to ${s.to}, per ${s.period}`;
    const calls = s.series.reduce((n, p) => n + p.calls, 0);
    document.getElementById("summary").textContent = calls
      ? `${calls} stored call${calls === 1 ? "" : "s"} in ${s.series.length} ${s.period}${s.series.length === 1 ? "" : "s"}.`
      : "No stored call in this range.";
    const lines = [{ name: subjectName, cls: "subject", points: new Map(s.series.map((p) => [p.period, p[measure]])) }];
    for (const team of s.comparison) {
      lines.push({ name: `team ${team.team}`, cls: "team", points: new Map(team.series.map((p) => [p.period, p[measure]])) });
    }
    const periods = [...new Set(lines.flatMap((l) => [...l.points.keys()]))].sort();
    document.getElementById("chart-title").textContent = `${MEASURES[measure]} per ${s.period}`;
    drawChart(periods, lines, measure);

    const head = document.getElementById("periods-head");
    head.replaceChildren(el("tr", {}, ...["Period", "Calls", "QA score", "Active listening", "Attunement", "De-escalation", "Lowest calmness"]
      .concat(s.comparison.map((t) => `Team ${t.team}: ${MEASURES[measure]}`)).map((h) => el("th", { text: h }))));
    const body = document.getElementById("periods");
    body.replaceChildren();
    for (const p of s.series) {
      const team = s.comparison.map((t) => (t.series.find((q) => q.period === p.period) || {})[measure]);
      body.append(el("tr", { "data-period": p.period },
        el("td", { text: p.period }), el("td", { text: String(p.calls) }), el("td", { text: num(p.mean_score_pct) }),
        el("td", { text: num(p.mean_active_listening) }), el("td", { text: num(p.mean_attunement) }),
        el("td", { text: num(p.mean_de_escalation) }), el("td", { text: num(p.mean_agent_calmness_min, 0) }),
        ...team.map((v) => el("td", { text: num(v) }))));
    }

    const agentsPanel = document.getElementById("agents-panel");
    agentsPanel.hidden = s.subject !== "team";
    const agents = document.getElementById("team-agents");
    agents.replaceChildren();
    for (const a of s.agents) {
      agents.append(el("tr", { "data-agent": a.agent },
        el("td", {}, el("a", { href: `/coaching/agent/${encodeURIComponent(a.agent)}`, text: a.agent })),
        el("td", { text: String(a.calls) }), el("td", { text: num(a.mean_score_pct) }),
        el("td", { text: num(a.mean_active_listening) }), el("td", { text: num(a.mean_attunement) }),
        el("td", { text: num(a.mean_de_escalation) }), el("td", { text: num(a.mean_agent_calmness_min, 0) })));
    }

    const mine = itemTotals(s.series);
    const theirs = itemTotals(s.comparison.flatMap((t) => t.series));
    document.getElementById("item-team-head").textContent = s.comparison.length ? "Team pass rate" : "";
    const items = document.getElementById("items");
    items.replaceChildren();
    for (const item of s.items) {
      const t = mine.get(item.item_id);
      items.append(el("tr", { "data-item": item.item_id },
        el("td", { text: item.title }), el("td", { text: String(t ? t.passed : 0) }), el("td", { text: String(t ? t.failed : 0) }),
        el("td", { text: rate(t) }), el("td", { text: s.comparison.length ? rate(theirs.get(item.item_id)) : "" })));
    }

    const moments = document.getElementById("moments");
    moments.replaceChildren();
    if (!s.moments.length) moments.append(el("tr", {}, el("td", { colspan: "7", class: "empty", text: "No moment to review in this range." })));
    for (const m of s.moments) {
      const cell = el("td", {});
      if (m.audio_url) {
        const button = el("button", { type: "button", class: "play-moment", "data-audio-url": m.audio_url, title: `Play the recording around ${num(m.t_s)} s`, text: "▶" });
        button.setAttribute("aria-label", button.title);
        button.addEventListener("click", () => play(m.audio_url, `${m.call_id} at ${num(m.t_s)} s`));
        cell.append(button);
      } else {
        cell.append(el("span", { class: "muted", title: "This call has no recording", text: "–" }));
      }
      moments.append(el("tr", { "data-call-id": m.call_id, "data-t-s": String(m.t_s) },
        cell, el("td", { text: when(m.call_at) }), el("td", { text: m.agent || "–" }),
        el("td", { text: MEASURE_OF_MOMENT[m.measure] || m.measure }), el("td", { text: num(m.measure_score) }),
        el("td", { text: num(m.call_score_pct) }),
        el("td", {}, el("a", { class: "moment-link", href: m.report_url, text: `${num(m.t_s)} s` }), ` ${m.what}`)));
    }
  }

  async function subject(kind, id) {
    document.getElementById("subject").hidden = false;
    const form = document.getElementById("range");
    const address = new URLSearchParams(location.search);
    for (const name of ["period", "from", "to", "measure"]) {
      if (address.get(name)) document.getElementById(name).value = address.get(name);
    }
    async function load() {
      const p = new URLSearchParams();
      p.set(kind, id);
      for (const name of ["period", "from", "to"]) {
        const v = document.getElementById(name).value.trim();
        if (v) p.set(name, v);
      }
      const measure = document.getElementById("measure").value;
      const shown = new URLSearchParams(p);
      shown.delete(kind);
      shown.set("measure", measure);
      history.replaceState(null, "", `${location.pathname}?${shown}`);
      const r = await fetchJSON(`/api/coaching?${p}`);
      if (!r.ok) return showError(r.status, r.body);
      noStore.hidden = true;
      render(r.body, measure);
    }
    form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
    document.getElementById("measure").addEventListener("change", load);
    await load();
  }

  const parts = location.pathname.split("/").filter(Boolean);
  if (parts.length === 3 && (parts[1] === "agent" || parts[1] === "team")) {
    subject(parts[1], decodeURIComponent(parts[2]));
  } else {
    roster();
  }
})();
