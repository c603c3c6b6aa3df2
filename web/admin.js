// Attune console: the admin page: users and API tokens through /api/admin/... (JSON; the
// session's CSRF token goes with every change). Every value is shown as text.
"use strict";

(() => {
  const { el, fetchJSON } = Attune;
  const status = document.getElementById("admin-status");
  const teamsOf = (text) => text.split(",").map((t) => t.trim()).filter((t) => t);
  function say(r, done) {
    status.textContent = r.ok ? done : (r.body.error || `HTTP ${r.status}`);
  }
  async function post(url, body) {
    return fetchJSON(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
  }
  function button(label, onClick) {
    const b = el("button", { type: "button", text: label });
    b.addEventListener("click", onClick);
    return b;
  }
  async function loadUsers() {
    const body = document.querySelector("#users tbody");
    const r = await fetchJSON("/api/admin/users");
    if (!r.ok) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "6", text: r.body.error || `HTTP ${r.status}` })));
      return;
    }
    body.replaceChildren(...r.body.users.map((u) => {
      const path = `/api/admin/users/${encodeURIComponent(u.name)}`;
      const toggle = button(u.disabled ? "Enable" : "Disable", async () => {
        const res = await post(`${path}/disabled`, { disabled: !u.disabled });
        say(res, `${u.name} ${u.disabled ? "enabled" : "disabled"}`);
        loadUsers();
      });
      const passwd = button("Set password", async () => {
        const password = window.prompt(`New password for ${u.name}`);
        if (!password) return;
        say(await post(`${path}/password`, { password }), `password of ${u.name} changed`);
      });
      return el("tr", {},
        el("td", { text: u.name }), el("td", { text: u.role }),
        el("td", { text: (u.teams || []).join(", ") || "-" }), el("td", { text: u.agent_id || "-" }),
        el("td", { text: u.disabled ? "disabled" : "active" }), el("td", {}, toggle, passwd));
    }));
  }
  async function loadTokens() {
    const body = document.querySelector("#tokens tbody");
    const r = await fetchJSON("/api/admin/tokens");
    if (!r.ok) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "9", text: r.body.error || `HTTP ${r.status}` })));
      return;
    }
    body.replaceChildren(...r.body.tokens.map((t) => {
      const revoke = t.revoked_at ? null : button("Revoke", async () => {
        if (!window.confirm(`Revoke token ${t.token_id}?`)) return;
        say(await post(`/api/admin/tokens/${encodeURIComponent(t.token_id)}/revoke`), `${t.token_id} revoked`);
        loadTokens();
      });
      return el("tr", {},
        el("td", { text: t.token_id }), el("td", { text: t.name }), el("td", { text: t.role }),
        el("td", { text: (t.teams || []).join(", ") }), el("td", { text: t.may_resume ? "yes" : "no" }),
        el("td", { text: t.created_at }), el("td", { text: t.expires_at || "never" }),
        el("td", { text: t.revoked_at ? `revoked ${t.revoked_at}` : "active" }), el("td", {}, revoke));
    }));
  }
  document.getElementById("add-user").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const agent = document.getElementById("u-agent").value.trim();
    const r = await post("/api/admin/users", {
      name: document.getElementById("u-name").value.trim(),
      role: document.getElementById("u-role").value,
      teams: teamsOf(document.getElementById("u-teams").value),
      agent_id: agent || null,
      password: document.getElementById("u-password").value,
    });
    say(r, `added ${r.body.role} ${r.body.name}`);
    if (r.ok) { ev.target.reset(); loadUsers(); }
  });
  document.getElementById("add-token").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const days = document.getElementById("t-days").value.trim();
    const r = await post("/api/admin/tokens", {
      role: document.getElementById("t-role").value,
      teams: teamsOf(document.getElementById("t-teams").value),
      name: document.getElementById("t-name").value,
      expires_days: days ? Number(days) : null,
      may_resume: document.getElementById("t-resume").checked,
    });
    say(r, r.ok ? `created ${r.body.role} token ${r.body.token_id}` : "");
    if (r.ok) {
      document.getElementById("new-token-value").textContent = r.body.token;
      document.getElementById("new-token").hidden = false;
      loadTokens();
    }
  });
  loadUsers();
  loadTokens();
})();
