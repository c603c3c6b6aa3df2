// Attune console: the audit log page (admins): reads /api/audit and lists its entries as text.
"use strict";

(() => {
  const { el, fetchJSON } = Attune;
  const body = document.querySelector("#audit tbody");
  async function load() {
    const p = new URLSearchParams();
    const actor = document.getElementById("f-actor").value.trim();
    const action = document.getElementById("f-action").value.trim();
    if (actor) p.set("actor", actor);
    if (action) p.set("action", action);
    const r = await fetchJSON(`/api/audit?${p}`);
    if (!r.ok) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "7", text: r.body.error || `HTTP ${r.status}` })));
      return;
    }
    body.replaceChildren(...r.body.entries.map((e) => el("tr", {},
      el("td", { text: String(e.seq) }), el("td", { text: e.at }), el("td", { text: e.actor }),
      el("td", { text: e.action }), el("td", { text: e.target }), el("td", { text: e.source }),
      el("td", { text: e.outcome }))));
  }
  document.getElementById("audit-filter").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  load();
})();
