// cellgrid ops console: plain script, no build step, nothing from a CDN.
// The access token lives in sessionStorage; the live view is a
// server-sent-event stream read with fetch (EventSource cannot send an
// Authorization header).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem("cellgrid.ops.token") || "";
  let role = "";
  let stream = null;
  let auditCursor = "";

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }
  function showError(msg) { $("error").textContent = msg || ""; }

  async function api(method, path, body) {
    const opts = { method, headers: { Authorization: "Bearer " + token } };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const res = await fetch(path, opts);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || res.status);
    return data;
  }

  function renderCells(snap) {
    const root = $("regions");
    root.replaceChildren();
    for (const r of snap.regions) {
      const box = el("div", { class: "region", "data-region": r.region }, el("b", {}, r.region), " ",
        el("span", { class: "region-state " + r.state }, r.state === "failed_over" ? `failed over → ${r.to || "others"}` : r.state));
      if (role === "admin") {
        const verb = r.state === "failed_over" ? "restore" : "failover";
        box.append(" ", el("button", { class: "region-" + verb, type: "button", "data-region": r.region, onclick: () => regionAct(r.region, verb) },
          verb === "restore" ? "restore" : "fail over"));
      }
      for (const c of r.cells) {
        const row = el("div", { class: "cell", "data-cell": c.id },
          el("span", { class: "name" }, c.id + " "),
          el("span", { class: "state " + c.state }, c.state));
        if (c.load) {
          const dgs = Object.entries(c.load.dgs).map(([v, s]) => `${v}: ${s.ready || 0} ready / ${s.allocated || 0} allocated`).join("; ") || "no servers heard";
          row.append(el("div", { class: "load" }, `${c.load.players} players · ${c.load.matches} matches · ${c.load.matches_per_minute}/min · ${dgs}`));
        }
        if (role === "admin") {
          const verb = c.state === "draining" ? "undrain" : "drain";
          row.append(" ", el("button", { class: verb, type: "button", "data-cell": c.id, onclick: () => act(c.id, verb) }, verb));
        }
        box.append(row);
      }
      root.append(box);
    }
    const t = snap.totals;
    $("totals").textContent = t ? `CCU in matches ${t.players} · matches ${t.matches} · ${t.matches_per_minute} started/min · DGS ${t.ready} ready / ${t.allocated} allocated` : "";
  }

  function renderFlags(flags) {
    $("flags-box").hidden = role === "player";
    $("flags").replaceChildren(...(flags || []).map((f) => el("tr", { "data-flag": f.id },
      el("td", {}, f.created_at), el("td", {}, f.player_id), el("td", {}, f.rule), el("td", {}, f.observed), el("td", {}, f.threshold),
      el("td", {},
        el("button", { class: "clear", type: "button", onclick: () => review(f.id, "cleared") }, "clear"), " ",
        el("button", { class: "confirm", type: "button", onclick: () => review(f.id, "confirmed") }, "confirm")))));
  }

  function renderBoard(page) {
    $("board-name").textContent = page ? page.leaderboard : "";
    const rows = page ? page.entries.map((e) => el("tr", {}, el("td", {}, "#" + e.rank), el("td", {}, e.username || e.player_id), el("td", {}, e.score))) : [];
    $("leaderboard").replaceChildren(...rows);
  }

  function render(snap) {
    role = snap.role;
    $("role").textContent = role;
    $("actions").hidden = role === "player";
    renderCells(snap);
    renderFlags(snap.flags);
    renderBoard(snap.leaderboard);
  }

  async function act(cell, verb) {
    const reason = $("reason").value;
    try {
      await api("POST", `/ops/cells/${encodeURIComponent(cell)}/${verb}`, { reason });
      showError("");
      loadAudit(true);
    } catch (e) { showError(`${verb} ${cell}: ${e.message}`); }
  }

  async function review(id, verdict) {
    try {
      await api("POST", `/ops/flags/${id}/review`, { verdict, note: $("reason").value });
      showError("");
      loadAudit(true);
    } catch (e) { showError(`review: ${e.message}`); }
  }

  async function grant(ev) {
    ev.preventDefault();
    const kind = $("grant-kind").value, player = $("grant-player").value.trim(), what = $("grant-what").value.trim();
    const amount = parseInt($("grant-amount").value, 10);
    const key = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
    const body = kind === "wallet"
      ? { currency: what, amount, reason: $("reason").value, idempotency_key: key }
      : { item_template_id: what, quantity: amount, reason: $("reason").value, idempotency_key: key };
    try {
      const res = await api("POST", `/ops/players/${encodeURIComponent(player)}/${kind}`, body);
      $("grant-result").textContent = kind === "wallet" ? `${what}: ${res.before} → ${res.balance}` : `${what}: ${res.before} → ${res.quantity}`;
      showError("");
      loadAudit(true);
    } catch (e) { $("grant-result").textContent = ""; showError(`${kind}: ${e.message}`); }
  }

  async function regionAct(region, verb) {
    try {
      await api("POST", `/ops/regions/${encodeURIComponent(region)}/${verb}`, { reason: $("reason").value || verb + " from the console" });
      showError("");
      loadAudit(true);
    } catch (e) { showError(`${verb} ${region}: ${e.message}`); }
  }

  async function loadAudit(fresh) {
    $("liveops-box").hidden = role !== "admin";
    if (role !== "admin") { $("audit-box").hidden = true; return; }
    $("audit-box").hidden = false;
    if (fresh) { auditCursor = ""; $("audit").replaceChildren(); }
    try {
      const page = await api("GET", "/ops/audit?limit=20" + (auditCursor ? "&cursor=" + encodeURIComponent(auditCursor) : ""));
      for (const a of page.entries) {
        $("audit").append(el("tr", {}, el("td", {}, a.at), el("td", {}, a.actor_id), el("td", {}, a.action), el("td", {}, a.target),
          el("td", {}, JSON.stringify(a.before)), el("td", {}, JSON.stringify(a.after)), el("td", {}, a.outcome)));
      }
      auditCursor = page.next_cursor || "";
      $("audit-more").hidden = !auditCursor;
    } catch (e) { showError("audit: " + e.message); }
  }

  // follow reads the event stream and renders every snapshot; it
  // reconnects after a second when the stream ends or fails.
  async function follow() {
    if (stream) stream.abort();
    const ctl = new AbortController();
    stream = ctl;
    while (!ctl.signal.aborted) {
      try {
        const res = await fetch("/ops/events", { headers: { Authorization: "Bearer " + token }, signal: ctl.signal });
        if (!res.ok) {
          const data = await res.json().catch(() => ({}));
          throw new Error((data.error && data.error.message) || res.status);
        }
        $("live").textContent = "live"; $("live").className = "on";
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const evt = buf.slice(0, i); buf = buf.slice(i + 2);
            const data = evt.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
            if (!data) continue;
            const first = role === "";
            render(JSON.parse(data));
            if (first) loadAudit(true);
          }
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
        showError("stream: " + e.message);
      }
      $("live").textContent = "reconnecting"; $("live").className = "off";
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  function start(t) {
    token = t;
    sessionStorage.setItem("cellgrid.ops.token", t);
    role = "";
    showError("");
    follow();
  }

  $("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); if ($("token").value) start($("token").value.trim()); });
  $("login").addEventListener("click", async () => {
    try {
      const res = await fetch("/auth/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ provider: "device", device_id: $("device").value.trim() }) });
      const data = await res.json();
      if (!res.ok) throw new Error((data.error && data.error.message) || res.status);
      start(data.access_token);
    } catch (e) { showError("login: " + e.message); }
  });
  $("audit-more").addEventListener("click", () => loadAudit(false));
  $("grant-form").addEventListener("submit", grant);
  if (token) follow();
})();
