// Attune console: shared pieces of every page — the live connection (server-sent events with
// reconnection and a staleness notice), labels and formatting, and render-latency recording.
"use strict";

const Attune = (() => {
  const SEVERITY = {
    critical: { icon: "\u203C", label: "Critical" },
    warning: { icon: "\u26A0", label: "Warning" },
    info: { icon: "\u2139", label: "Info" },
  };
  const EMOTION = {
    angry: { icon: "\u25B2", label: "angry / frustrated" },
    anxious: { icon: "\u25C6", label: "anxious" },
    sad: { icon: "\u25BC", label: "sad" },
    happy: { icon: "\u25CF", label: "happy" },
    neutral: { icon: "\u25CB", label: "neutral" },
  };
  // Cues the agent sees on their own call (the others are for supervisors).
  const SUPERVISOR_ONLY = new Set(["positive_interaction", "caller_calmed_down"]);
  const LATENCY_CAP = 20000;
  const STALE_AFTER_MS = 12000;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  function cueName(kind) {
    const s = String(kind).replace(/_/g, " ");
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  function severityText(sev) {
    const s = SEVERITY[sev] || { icon: "", label: sev };
    return `${s.icon} ${s.label}`;
  }

  function cueChip(cue) {
    const node = el("li", { class: `cue ${cue.severity}`, "data-cue-id": String(cue.cue_id) });
    node.textContent = `${(SEVERITY[cue.severity] || {}).icon || ""} ${cueName(cue.kind)}`;
    node.title = `${(SEVERITY[cue.severity] || {}).label || cue.severity}: ${cue.evidence ? cue.evidence.rule : ""}`;
    return node;
  }

  // The caller's state as a label: emotion with confidence, or "listening…".
  function callerState(point) {
    if (!point || !point.emotion) {
      return { text: "listening\u2026", cls: "emo-listening", emotion: null };
    }
    const e = EMOTION[point.emotion] || { icon: "", label: point.emotion };
    const pct = Math.round((point.confidence || 0) * 100);
    return { text: `${e.icon} ${e.label} (${pct}% sure)`, cls: `emo-${point.emotion}`, emotion: point.emotion };
  }

  function calmnessState(value) {
    if (value == null) return { text: "listening\u2026", cls: "emo-listening", word: "" };
    const v = Math.round(value);
    if (v < 40) return { text: `${v}/100 tense`, cls: "calm-low", word: "tense" };
    if (v < 60) return { text: `${v}/100 a bit tense`, cls: "calm-mid", word: "a bit tense" };
    return { text: `${v}/100 calm`, cls: "calm-ok", word: "calm" };
  }

  function formatDuration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const m = Math.floor(s / 60);
    const h = Math.floor(m / 60);
    const mm = String(m % 60).padStart(h ? 2 : 1, "0");
    return `${h ? h + ":" : ""}${mm}:${String(s % 60).padStart(2, "0")}`;
  }

  function formatClock(unixMs) {
    return new Date(unixMs).toLocaleTimeString();
  }

  // The session's CSRF token (the attune_csrf cookie), sent as X-CSRF-Token with every
  // state-changing request.
  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)attune_csrf=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function withCsrf(headers) {
    return Object.assign({ "X-CSRF-Token": csrfToken() }, headers || {});
  }

  async function fetchJSON(url, options) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 8000);
    const opts = Object.assign({ signal: controller.signal, cache: "no-store" }, options || {});
    if (opts.method && opts.method !== "GET") opts.headers = withCsrf(opts.headers);
    try {
      const response = await fetch(url, opts);
      if (response.status === 401) {
        location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
      }
      const body = await response.json().catch(() => ({}));
      return { status: response.status, ok: response.ok, body };
    } finally {
      clearTimeout(timer);
    }
  }

  // Render latency: published_at_unix_ms (server) until the next animation frame after the
  // page updated the DOM. Kept in a bounded array read by tests: window.attuneLatencies.
  const latencies = [];
  let pendingPublished = [];
  let frameRequested = false;
  function recordRendered(publishedAtUnixMs) {
    if (!publishedAtUnixMs) return;
    pendingPublished.push(publishedAtUnixMs);
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(() => {
      const now = Date.now();
      for (const p of pendingPublished) latencies.push(now - p);
      if (latencies.length > LATENCY_CAP) latencies.splice(0, latencies.length - LATENCY_CAP);
      pendingPublished = [];
      frameRequested = false;
    });
  }
  window.attuneLatencies = latencies;

  // The live connection: an EventSource that is rebuilt with back-off when the browser gives up
  // (server restart), calls onSync() on every (re)connect and after a resync so the page re-reads
  // the state, and shows "live" or "stale" in the #conn element.
  function connect(query, handlers) {
    const conn = document.getElementById("conn");
    let source = null;
    let lastMessageMs = Date.now();
    let connected = false;
    let retryMs = 1000;
    let bootId = null;

    function setStatus() {
      if (!conn) return;
      const ageS = Math.round((Date.now() - lastMessageMs) / 1000);
      const stale = !connected || Date.now() - lastMessageMs > STALE_AFTER_MS;
      conn.className = `conn ${stale ? "stale" : "live"}`;
      conn.textContent = stale
        ? `\u26A0 Reconnecting \u2014 data may be stale (last update ${ageS} s ago)`
        : "\u25CF Live";
      document.body.dataset.stale = stale ? "true" : "false";
    }
    setInterval(setStatus, 1000);

    function open() {
      const url = "/events" + (query ? "?" + query : "");
      source = new EventSource(url);
      const seen = () => { lastMessageMs = Date.now(); };
      source.addEventListener("hello", (m) => {
        seen();
        connected = true;
        retryMs = 1000;
        const hello = JSON.parse(m.data);
        if (bootId !== null && bootId !== hello.boot_id && handlers.onRestart) handlers.onRestart();
        bootId = hello.boot_id;
        setStatus();
        handlers.onSync();
      });
      source.addEventListener("tick", seen);
      source.addEventListener("resync", () => { seen(); handlers.onSync(); });
      for (const name of ["call_started", "snapshot", "emotion", "cue", "call_ended", "ack"]) {
        source.addEventListener(name, (m) => {
          seen();
          let data;
          try { data = JSON.parse(m.data); } catch (e) { return; }
          handlers.onEvent(name, data);
        });
      }
      source.onerror = () => {
        connected = false;
        setStatus();
        if (source.readyState === EventSource.CLOSED) {
          setTimeout(open, retryMs);
          retryMs = Math.min(retryMs * 2, 15000);
        }
      };
    }
    open();
    setStatus();
  }

  function param(name) {
    return new URLSearchParams(location.search).get(name) || "";
  }

  function lastPathPart() {
    const parts = location.pathname.split("/").filter(Boolean);
    return decodeURIComponent(parts[parts.length - 1] || "");
  }

  // Who is signed in, and a way to sign out, in the page's header bar.
  async function showIdentity() {
    const bar = document.querySelector("header.bar");
    if (!bar) return;
    const r = await fetchJSON("/api/me");
    if (!r.ok || !r.body.authentication) return;
    const button = el("button", { type: "button", id: "sign-out", text: "Sign out" });
    button.addEventListener("click", async () => {
      await fetchJSON("/logout", { method: "POST" });
      location.href = "/login";
    });
    bar.append(el("span", { class: "who", id: "who", text: `${r.body.name} (${r.body.role})` }), button);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showIdentity);
  else showIdentity();

  return {
    SEVERITY, EMOTION, SUPERVISOR_ONLY, el, withCsrf, cueName, severityText, cueChip, callerState,
    calmnessState, formatDuration, formatClock, fetchJSON, recordRendered,
    connect, param, lastPathPart,
  };
})();
