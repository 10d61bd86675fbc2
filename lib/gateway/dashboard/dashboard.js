/*
 * The dashboard's script (docs/dashboard.md): plain JavaScript, no
 * framework, no build step, nothing from another origin. Every value
 * shown comes from the gateway's /v1 API with the user's key and reaches
 * the page through textContent or an attribute, never as HTML.
 *
 * Live: the lists are read again every BUSY_POLL_MS while a task or VM
 * on the page is on its way (pending, running, creating: a change is
 * coming), every POLL_MS otherwise, and the tables updated in place (rows
 * keyed by id, so focus and selection stay); the history for the charts
 * every HISTORY_MS. A row whose status changed carries
 * data-changed-at (Date.now() of the change): the browser test measures
 * the update latency from it.
 */
"use strict";
(function () {
  const POLL_MS = 1500;
  const BUSY_POLL_MS = 500;
  const RATE_LIMITED_MS = 5000; // after a 429: the tenant's other clients first
  const HIDDEN_POLL_MS = 10000; // a tab nobody looks at asks less often
  const HISTORY_MS = 5000;
  const KEY = "aeth_dashboard_key";
  const $ = (id) => document.getElementById(id);
  const state = {
    key: null, who: null, paused: false, timer: null, busy: false,
    lastOk: 0, lastHistory: 0, selected: null, vms: [], tasks: [],
    running: [], workers: null, queues: null, history: null,
    stream: null, streamTask: null, firstData: null, polls: 0,
  };
  // for the browser test and anyone curious in the console
  window.aethDashboard = state;

  /* ---- the key --------------------------------------------------------- */

  function keyFromFragment() {
    const m = /(?:^|[#&])key=([^&]+)/.exec(location.hash);
    if (!m) return null;
    // off the address bar and out of the history at once
    history.replaceState(null, "", location.pathname + location.search);
    try { return decodeURIComponent(m[1]); } catch (e) { return null; }
  }

  function setKey(k) {
    state.key = k;
    if (k) sessionStorage.setItem(KEY, k); else sessionStorage.removeItem(KEY);
  }

  /* ---- the API --------------------------------------------------------- */

  class ApiError extends Error {
    constructor(kind, status, code, message) {
      super(message);
      this.kind = kind; this.status = status; this.code = code;
    }
  }

  async function api(path, opts) {
    let r;
    try {
      r = await fetch(path, Object.assign({
        headers: { Authorization: "Bearer " + state.key },
        cache: "no-store", credentials: "omit",
      }, opts || {}));
    } catch (e) {
      throw new ApiError("down", 0, "unreachable",
        "The gateway does not answer (" + e.message + ")");
    }
    if (r.ok && (opts || {}).raw) return r;
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (r.ok) return body;
    const err = body && body.error ? body.error : {};
    const kind = r.status === 401 ? "auth" : r.status === 403 ? "forbidden"
      : r.status === 429 ? "rate" : r.status >= 500 ? "server" : "client";
    throw new ApiError(kind, r.status, err.code || "http_" + r.status,
      err.message || ("HTTP " + r.status + " from " + path));
  }

  /* ---- small helpers ---------------------------------------------------- */

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "class") e.className = attrs[k];
      else if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of kids) e.append(c);
    return e;
  }

  function ms(t) { return t ? Date.parse(t) : 0; }

  function ago(t) {
    if (!t) return "";
    let s = Math.max(0, Math.round((Date.now() - ms(t)) / 1000));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor(s % 3600 / 60) + "m";
    return Math.floor(s / 86400) + "d " + Math.floor(s % 86400 / 3600) + "h";
  }

  function dur(a, b) {
    if (!a) return "";
    const d = (b ? ms(b) : Date.now()) - ms(a);
    if (d < 1000) return d + " ms";
    if (d < 60000) return (d / 1000).toFixed(1) + " s";
    return ago(new Date(Date.now() - d).toISOString());
  }

  function fmtMs(v) {
    if (v === null || v === undefined) return "–";
    return v < 1000 ? Math.round(v) + " ms" : (v / 1000).toFixed(1) + " s";
  }

  function clock(t) {
    return t ? new Date(ms(t)).toLocaleTimeString([], { hour12: false }) : "";
  }

  function short(id) { return id ? id.slice(0, 8) : ""; }

  function statusCell(s) {
    return { text: s || "", cls: "st st-" + (s || "none") };
  }

  /*
   * Update `tbody` to show `items` in order, one row per key(item); cells(item)
   * gives [{text, cls, title}...]. Rows are reused, so focus and selection
   * survive an update; a row whose status changes gets data-changed-at.
   */
  function renderRows(tbody, items, key, cells, ncols, empty, onRow) {
    const have = new Map();
    for (const tr of Array.from(tbody.rows))
      if (tr.dataset.id) have.set(tr.dataset.id, tr); else tr.remove();
    const keep = new Set();
    items.forEach((item, i) => {
      const id = key(item);
      keep.add(id);
      let tr = have.get(id);
      const cs = cells(item);
      if (!tr) {
        tr = el("tr", { "data-id": id });
        for (let j = 0; j < cs.length; j++) tr.append(el("td"));
        if (onRow) onRow(tr, item);
      }
      cs.forEach((c, j) => {
        const td = tr.cells[j];
        if (td.textContent !== c.text) td.textContent = c.text;
        const cls = c.cls || "";
        if (td.className !== cls) td.className = cls;
        if (c.title !== undefined && td.title !== c.title) td.title = c.title;
      });
      if (item.status !== undefined && tr.dataset.status !== item.status) {
        if (tr.dataset.status !== undefined) tr.dataset.changedAt = String(Date.now());
        tr.dataset.status = item.status;
      }
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
    });
    for (const [id, tr] of have) if (!keep.has(id)) tr.remove();
    if (!items.length)
      tbody.append(el("tr", {}, el("td", { class: "empty", colspan: ncols, text: empty })));
  }

  /* ---- views ----------------------------------------------------------- */

  function renderWho() {
    const w = state.who;
    $("who").textContent = w ? "tenant " + w.tenant + (w.operator ? " · operator (all tenants)" : "")
      + " · key " + w.key_prefix + "…" : "";
  }

  function card(k, v, bad, title) {
    return el("div", { class: "card" + (bad ? " bad" : ""), title: title || "" },
      el("div", { class: "v", text: String(v) }), el("div", { class: "k", text: k }));
  }

  function renderCards() {
    const vms = state.vms.filter((v) => v.status === "running").length;
    const creating = state.vms.filter((v) => v.status === "creating").length;
    const running = state.running.length;
    let ok = 0, failed = 0;
    for (const b of (state.history || {}).buckets || []) { ok += b.ok; failed += b.failed; }
    const w = state.workers;
    const alive = w ? w.filter((x) => x.alive).length : null;
    const cards = [
      card("workers alive", w ? alive + " / " + w.length : "–", w && alive < w.length),
      card("VMs running", vms + (creating ? " +" + creating : ""), false, "running (+ creating)"),
      card("tasks running", running),
      card("tasks ok, last hour", ok),
      card("failed, last hour", failed, failed > 0),
      card("pending", state.queues ? state.queues.reduce((a, q) => a + (q.pending || 0), 0) : "–"),
    ];
    $("cards").replaceChildren(...cards);
  }

  function renderWorkers() {
    const note = $("workers-note");
    if (state.workers === null) {
      note.hidden = false;
      note.textContent = "Workers are shown to operator keys only.";
      renderRows($("workers-body"), [], null, null, 6, "–");
      return;
    }
    note.hidden = true;
    const busy = new Map(), vms = new Map();
    for (const t of state.running) busy.set(t.worker_id, (busy.get(t.worker_id) || 0) + 1);
    for (const v of state.vms)
      if (v.status === "running") vms.set(v.owner_worker, (vms.get(v.owner_worker) || 0) + 1);
    renderRows($("workers-body"), state.workers, (w) => w.id, (w) => [
      { text: w.id, title: (w.host || "") + " pid " + (w.pid || "") },
      statusCell(w.state || (w.alive ? "alive" : "dead")),
      { text: (busy.get(w.id) || 0) + " / " + (w.concurrency || "?"), title: "busy / slots" },
      { text: String(vms.get(w.id) || 0) },
      { text: (w.queues || []).join(", "), title: (w.queues || []).join(", ") },
      { text: w.age_ms !== undefined ? Math.round(w.age_ms / 1000) + "s ago" : "" },
    ], 6, "no worker has registered");
  }

  function renderQueues() {
    const note = $("queues-note");
    const recent = new Map();
    for (const q of (state.history || {}).queues || []) recent.set(q.name, q);
    let list;
    if (state.queues === null) {
      note.hidden = false;
      note.textContent = "Queue depths are shown to operator keys only; throughput and wait are your tenant's.";
      list = Array.from(recent.keys()).map((name) => ({ name }));
    } else {
      note.hidden = true;
      list = state.queues.slice();
      for (const name of recent.keys())
        if (!list.some((q) => q.name === name)) list.push({ name });
    }
    const n = (v) => ({ text: v === undefined ? "–" : String(v), cls: "num" });
    renderRows($("queues-body"), list, (q) => q.name, (q) => {
      const r = recent.get(q.name) || {};
      return [
        { text: q.name }, n(q.pending), n(q.active), n(q.retry), n(q.dead),
        { text: r.per_s !== undefined ? r.per_s.toFixed(2) : "–", cls: "num" },
        { text: fmtMs(r.wait_mean_ms), cls: "num" },
        { text: fmtMs(r.wait_p95_ms), cls: "num" },
      ];
    }, 8, "no queue");
  }

  function renderVms() {
    const all = $("vms-ended").checked;
    const list = state.vms.filter((v) => all || v.status === "running" || v.status === "creating" || v.status === "failed");
    $("vms-count").textContent = "(" + list.length + (all ? "" : " active") + ")";
    renderRows($("vms-body"), list, (v) => v.id, (v) => [
      { text: v.name || "" }, { text: short(v.id), cls: "id", title: v.id },
      Object.assign(statusCell(v.status), { title: v.error || "" }),
      { text: v.tenant || "" }, { text: v.owner_worker || "" },
      { text: String(v.vcpu_count || ""), cls: "num" },
      { text: String(v.memory_mb || ""), cls: "num" },
      { text: ago(v.created_at), title: v.created_at || "" },
    ], 8, all ? "no VM" : "no VM running", (tr) => {
      // a VM's row shows its tasks: the task filter set to its id
      tr.tabIndex = 0;
      tr.title = "Show this VM's tasks (Enter)";
      const show = () => {
        $("f-text").value = tr.dataset.id;
        renderTasks();
        $("tasks").scrollIntoView();
      };
      tr.addEventListener("click", show);
      tr.addEventListener("keydown", (e) => {
        if (e.key === "Enter") { e.preventDefault(); show(); }
      });
    });
  }

  function taskMatches(t, q) {
    if (!q) return true;
    q = q.toLowerCase();
    return [t.id, t.vm_id, t.worker_id, t.error, t.type, t.tenant, t.queue]
      .some((v) => v && String(v).toLowerCase().includes(q));
  }

  function renderTasks() {
    const q = $("f-text").value.trim();
    const list = state.tasks.filter((t) => taskMatches(t, q));
    $("tasks-count").textContent = "(" + list.length + (list.length >= 200 ? ", newest 200" : "") + ")";
    renderRows($("tasks-body"), list, (t) => t.id, (t) => [
      { text: short(t.id), cls: "id", title: t.id },
      { text: t.type }, Object.assign(statusCell(t.status), { title: t.error || "" }),
      { text: t.tenant || "" }, { text: short(t.vm_id), cls: "id", title: t.vm_id || "" },
      { text: t.worker_id || "" }, { text: clock(t.created_at), title: t.created_at || "" },
      { text: t.started_at ? dur(t.started_at, t.completed_at) : "", cls: "num" },
    ], 8, "no task matches", (tr) => {
      tr.tabIndex = 0;
      tr.addEventListener("click", () => select(tr.dataset.id));
      tr.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(tr.dataset.id); }
      });
    });
    for (const tr of $("tasks-body").rows)
      tr.setAttribute("aria-selected", tr.dataset.id === state.selected ? "true" : "false");
  }

  /* ---- charts ------------------------------------------------------------ */

  const SVGNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  /* bars: [{cls, values}] stacked; lines: [{cls, values}] (null: no point) */
  function chart(host, n, bars, lines, fmt, label) {
    const W = 400, H = 120, L = 38, B = 16, T = 6;
    const w = (W - L - 4) / Math.max(n, 1);
    let max = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (const b of bars) s += b.values[i] || 0;
      max = Math.max(max, s);
      for (const l of lines) if (l.values[i] !== null) max = Math.max(max, l.values[i]);
    }
    max = niceMax(max);
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": label, preserveAspectRatio: "none" });
    root.append(svg("line", { class: "axis", x1: L, x2: W, y1: y(0), y2: y(0) }));
    root.append(svg("line", { class: "axis", x1: L, x2: W, y1: y(max), y2: y(max) }));
    const ty = svg("text", { x: L - 4, y: y(max) + 4, "text-anchor": "end" });
    ty.textContent = fmt(max);
    const t0 = svg("text", { x: L - 4, y: y(0), "text-anchor": "end" });
    t0.textContent = "0";
    root.append(ty, t0);
    [[0, "-" + n + "m"], [n / 2, "-" + Math.round(n / 2) + "m"], [n, "now"]].forEach(([i, s]) => {
      const t = svg("text", { x: L + i * w, y: H - 3,
        "text-anchor": i === 0 ? "start" : i === n ? "end" : "middle" });
      t.textContent = s;
      root.append(t);
    });
    for (let i = 0; i < n; i++) {
      let base = 0;
      for (const b of bars) {
        const v = b.values[i] || 0;
        if (v > 0) {
          const r = svg("rect", { class: b.cls, x: L + i * w + 0.5, width: Math.max(w - 1, 0.5),
            y: y(base + v), height: y(base) - y(base + v) });
          const tt = svg("title", {});
          tt.textContent = b.name + ": " + fmt(v) + " (" + (n - i) + " min ago)";
          r.append(tt);
          root.append(r);
        }
        base += v;
      }
    }
    for (const l of lines) {
      let d = "";
      l.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        d += (d && l.values[i - 1] !== null && l.values[i - 1] !== undefined ? "L" : "M")
          + (L + (i + 0.5) * w).toFixed(1) + " " + y(v).toFixed(1);
      });
      if (d) root.append(svg("path", { class: l.cls, d: d }));
      // a dot a minute: a lone minute has no line to draw
      l.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        const c = svg("circle", { class: l.cls + " dot", cx: (L + (i + 0.5) * w).toFixed(1),
          cy: y(v).toFixed(1), r: 2 });
        const tt = svg("title", {});
        tt.textContent = l.name + ": " + fmt(v) + " (" + (n - i) + " min ago)";
        c.append(tt);
        root.append(c);
      });
    }
    host.replaceChildren(root);
  }

  function renderCharts() {
    const h = state.history;
    if (!h) return;
    const b = h.buckets, n = b.length, per = h.bucket_s || 60;
    const okS = b.map((x) => x.ok / per), badS = b.map((x) => x.failed / per);
    const total = b.reduce((a, x) => a + x.ok + x.failed, 0);
    chart($("chart-rate"), n, [{ cls: "ok", name: "ok/s", values: okS },
      { cls: "bad", name: "failed/s", values: badS }], [],
      (v) => v >= 10 ? v.toFixed(0) : v.toFixed(2),
      "tasks per second over the last " + n + " minutes: " + total + " tasks ended");
    const boots = b.reduce((a, x) => a + x.boots, 0);
    chart($("chart-boot"), n, [], [
      { cls: "mean", name: "mean", values: b.map((x) => x.boot_mean_ms) },
      { cls: "p95", name: "p95", values: b.map((x) => x.boot_p95_ms) }], fmtMs,
      "VM boot time per minute, mean and p95: " + boots + " boots");
    const fails = b.reduce((a, x) => a + x.failed, 0);
    chart($("chart-fail"), n, [{ cls: "bad", name: "failed", values: b.map((x) => x.failed) }], [],
      (v) => String(Math.round(v * 10) / 10), "failures per minute: " + fails + " in all");
  }

  /* ---- the task detail ----------------------------------------------------- */

  function select(id) {
    if (state.selected !== id) stopStream();
    state.selected = id;
    $("detail").hidden = !id;
    for (const tr of $("tasks-body").rows)
      tr.setAttribute("aria-selected", tr.dataset.id === id ? "true" : "false");
    if (id) refreshDetail(true);
  }

  function stopStream() {
    if (state.stream) state.stream.abort();
    state.stream = null;
    state.streamTask = null;
  }

  /* Live output of a running vm:execute (NDJSON): chunks as they come. */
  async function streamOutput(id) {
    const ctl = new AbortController();
    state.stream = ctl;
    state.streamTask = id;
    $("detail-stdout").textContent = "";
    $("detail-stderr").textContent = "";
    $("detail-out-note").textContent = "live output…";
    try {
      const r = await api("/v1/tasks/" + encodeURIComponent(id) + "/output?format=ndjson",
        { raw: true, signal: ctl.signal });
      const rd = r.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await rd.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl); buf = buf.slice(nl + 1);
          if (!line.trim() || state.streamTask !== id) continue;
          const o = JSON.parse(line);
          if (o.stream === "stdout") $("detail-stdout").append(o.data);
          else if (o.stream === "stderr") $("detail-stderr").append(o.data);
          else if ("exit_code" in o) $("detail-out-note").textContent = "exit code " + o.exit_code;
        }
      }
    } catch (e) {
      if (e.name !== "AbortError" && state.streamTask === id)
        $("detail-out-note").textContent = "live output stopped: " + e.message;
    }
    if (state.streamTask === id) { state.stream = null; }
  }

  function field(dl, k, v) {
    if (v === null || v === undefined || v === "") return;
    dl.append(el("dt", { text: k }), el("dd", { text: String(v) }));
  }

  async function refreshDetail(first) {
    const id = state.selected;
    if (!id) return;
    let t;
    try {
      t = await api("/v1/tasks/" + encodeURIComponent(id));
    } catch (e) {
      if (e.status === 404) { $("detail-out-note").textContent = "task not found (deleted, or not your tenant's)"; return; }
      throw e;
    }
    if (state.selected !== id) return;
    const dl = $("detail-fields");
    const frag = el("dl");
    field(frag, "id", t.id); field(frag, "type", t.type); field(frag, "status", t.status);
    field(frag, "tenant", t.tenant); field(frag, "queue", t.queue);
    field(frag, "vm", t.vm_id); field(frag, "worker", t.worker_id);
    field(frag, "retries", t.retry_count + " of " + t.max_retries);
    field(frag, "created", t.created_at); field(frag, "started", t.started_at);
    field(frag, "completed", t.completed_at);
    if (t.started_at) field(frag, "waited", dur(t.created_at, t.started_at));
    if (t.started_at) field(frag, t.completed_at ? "ran" : "running for", dur(t.started_at, t.completed_at));
    field(frag, "error", t.error);
    dl.replaceChildren(...frag.childNodes);
    dl.dataset.status = t.status;
    $("detail-h").firstChild.textContent = "Task " + short(t.id) + " ";
    const live = t.type === "vm:execute" && (t.status === "running" || t.status === "pending")
      && t.payload && t.payload.live_output;
    if (live) {
      if (state.streamTask !== id) streamOutput(id);
    } else if (!state.stream || first) {
      stopStream();
      const res = t.result || {};
      $("detail-stdout").textContent = typeof res.stdout === "string" ? res.stdout : "";
      $("detail-stderr").textContent = typeof res.stderr === "string" ? res.stderr : "";
      $("detail-out-note").textContent =
        res.exit_code !== undefined ? "exit code " + res.exit_code
          + (res.timed_out ? " (timed out)" : "") + (res.stdout_truncated ? " (stdout truncated)" : "")
          : t.type === "vm:execute" ? (t.completed_at ? "no output recorded" : "waiting for the command to finish")
            : "no output (a " + t.type + " task)";
    }
    const json = JSON.stringify({ payload: t.payload, result: t.result }, null, 2);
    if ($("detail-json").textContent !== json) $("detail-json").textContent = json;
  }

  /* ---- polling ------------------------------------------------------------- */

  function showError(e) {
    const box = $("error");
    if (!e) { box.hidden = true; box.textContent = ""; return; }
    let msg;
    if (e.kind === "auth")
      msg = "The gateway refused the key (" + e.message + "). It may have been revoked: sign in with another key.";
    else if (e.kind === "down")
      msg = e.message + ". Retrying every " + nextDelay() / 1000 + " s"
        + (state.lastOk ? "; last good update " + new Date(state.lastOk).toLocaleTimeString([], { hour12: false }) : "") + ".";
    else if (e.kind === "rate")
      msg = "Rate limited by the gateway (" + e.message + "): asking every "
        + RATE_LIMITED_MS / 1000 + " s until it answers again.";
    else
      msg = "The gateway answered " + e.status + " " + e.code + ": " + e.message;
    box.textContent = msg;
    box.dataset.kind = e.kind;
    box.hidden = false;
  }

  function setLive(cls, text) {
    const l = $("live");
    l.className = "live " + cls;
    l.textContent = text;
  }

  async function optional(p) {
    try { return await p; } catch (e) { if (e.kind === "forbidden") return null; throw e; }
  }

  async function poll(force) {
    if (state.busy || !state.key) return;
    if (state.paused && !force) return;
    state.busy = true;
    try {
      if (!state.who) {
        state.who = await api("/v1/whoami");
        renderWho();
        $("tenant-pick").hidden = !state.who.operator;
      }
      const st = $("f-status").value, ty = $("f-type").value;
      let tq = "/v1/tasks?limit=200";
      if (st) tq += "&status=" + encodeURIComponent(st);
      if (ty) tq += "&type=" + encodeURIComponent(ty);
      const op = state.who.operator;
      // an operator may narrow everything to one tenant (the API's ?tenant=)
      const tn = op ? $("f-tenant").value.trim() : "";
      const tenantQ = tn ? "&tenant=" + encodeURIComponent(tn) : "";
      tq += tenantQ;
      const wantHistory = force || Date.now() - state.lastHistory >= HISTORY_MS;
      const [vms, tasks, running, workers, queues, history] = await Promise.all([
        api("/v1/vms?limit=500" + tenantQ), api(tq),
        api("/v1/tasks?status=running&limit=1000" + tenantQ),
        op ? optional(api("/v1/workers")) : Promise.resolve(null),
        op ? optional(api("/v1/queues")) : Promise.resolve(null),
        wantHistory ? api("/v1/stats/history?window_s=3600" + tenantQ) : Promise.resolve(state.history),
      ]);
      Object.assign(state, { vms, tasks, running, workers, queues, history });
      if (wantHistory) state.lastHistory = Date.now();
      renderAll();
      if (state.selected) await refreshDetail(false);
      state.lastOk = Date.now();
      state.rateLimited = false;
      state.polls++;
      if (!state.firstData) state.firstData = performance.now();
      showError(null);
      setLive(state.paused ? "paused" : "ok", (state.paused ? "paused · " : "live · ") + "updated "
        + new Date(state.lastOk).toLocaleTimeString([], { hour12: false }));
    } catch (e) {
      if (!(e instanceof ApiError)) e = new ApiError("client", 0, "script", String(e && e.stack || e));
      state.rateLimited = e.kind === "rate";
      showError(e);
      setLive("down", e.kind === "auth" ? "key refused" : "no answer");
      if (e.kind === "auth") { setKey(null); state.who = null; showLogin(true); }
    } finally {
      state.busy = false;
    }
  }

  function renderAll() {
    renderCards(); renderCharts(); renderWorkers(); renderQueues(); renderVms(); renderTasks();
  }

  /* Something on the page is about to change. */
  function busy() {
    return state.tasks.some((t) => t.status === "pending" || t.status === "running"
      || t.status === "retrying") || state.vms.some((v) => v.status === "creating")
      || state.running.length > 0;
  }

  function nextDelay() {
    if (document.hidden) return HIDDEN_POLL_MS;
    if (state.rateLimited) return RATE_LIMITED_MS;
    return state.lastOk && busy() ? BUSY_POLL_MS : POLL_MS;
  }

  /* One poll, then the next after nextDelay(): a chain of timeouts, so a
   * slow gateway is never asked twice at once. */
  function tick() {
    poll(false).finally(() => {
      clearTimeout(state.timer);
      if (state.key && !$("main").hidden) state.timer = setTimeout(tick, nextDelay());
    });
  }

  function start() {
    clearTimeout(state.timer);
    state.timer = setTimeout(tick, 0);
  }

  function showLogin(keepError) {
    $("main").hidden = true;
    $("login").hidden = false;
    if (!keepError) showError(null);
    clearTimeout(state.timer);
    stopStream();
    $("who").textContent = "";
    $("tenant-pick").hidden = true;
    $("key").focus();
  }

  function showMain() {
    $("login").hidden = true;
    $("main").hidden = false;
    start();
  }

  /* ---- keys and controls ----------------------------------------------------- */

  function moveRow(d) {
    const rows = Array.from($("tasks-body").rows).filter((r) => r.dataset.id);
    if (!rows.length) return;
    let i = rows.indexOf(document.activeElement);
    i = i < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, i + d));
    rows[i].focus();
  }

  let gPending = false;
  function onKey(e) {
    const t = e.target;
    const typing = t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA");
    if (e.key === "Escape") {
      if (typing) { t.blur(); return; }
      if (state.selected) { const id = state.selected; select(null);
        const tr = $("tasks-body").querySelector('tr[data-id="' + CSS.escape(id) + '"]');
        if (tr) tr.focus(); }
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey || $("main").hidden) return;
    if (gPending) {
      gPending = false;
      const to = { o: "overview", v: "vms", t: "tasks" }[e.key];
      if (to) { e.preventDefault(); $(to).scrollIntoView(); }
      return;
    }
    switch (e.key) {
      case "/": e.preventDefault(); $("f-text").focus(); $("f-text").select(); break;
      case "r": e.preventDefault(); poll(true); break;
      case "p": e.preventDefault(); togglePause(); break;
      case "j": e.preventDefault(); moveRow(1); break;
      case "k": e.preventDefault(); moveRow(-1); break;
      case "g": gPending = true; setTimeout(() => { gPending = false; }, 1500); break;
      case "?": e.preventDefault(); $("help").showModal(); break;
      default: break;
    }
  }

  function togglePause() {
    state.paused = !state.paused;
    $("pause").setAttribute("aria-pressed", String(state.paused));
    $("pause").textContent = state.paused ? "Resume" : "Pause";
    setLive(state.paused ? "paused" : "ok", state.paused ? "paused" : "resuming…");
    if (!state.paused) poll(true);
  }

  function init() {
    document.addEventListener("keydown", onKey);
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const k = $("key").value.trim();
      if (!k) return;
      $("key").value = "";
      setKey(k);
      state.who = null;
      showMain();
    });
    $("refresh").addEventListener("click", () => poll(true));
    $("pause").addEventListener("click", togglePause);
    $("logout").addEventListener("click", () => { setKey(null); state.who = null; showLogin(false); });
    $("help-btn").addEventListener("click", () => $("help").showModal());
    $("detail-close").addEventListener("click", () => select(null));
    $("vms-ended").addEventListener("change", renderVms);
    $("f-text").addEventListener("input", renderTasks);
    for (const id of ["f-status", "f-type"]) $(id).addEventListener("change", () => poll(true));
    $("f-tenant").addEventListener("change", () => { state.lastHistory = 0; poll(true); });
    document.addEventListener("visibilitychange", () => { if (state.key && !$("main").hidden) start(); });
    window.addEventListener("hashchange", () => {
      const k = keyFromFragment();
      if (k) { setKey(k); state.who = null; showMain(); }
    });
    const k = keyFromFragment() || sessionStorage.getItem(KEY);
    if (k) { setKey(k); showMain(); } else showLogin(false);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
