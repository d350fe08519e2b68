// The planners' page: a brief and its roster, budget what-ifs and scenario comparisons; creator search and profiles;
// shortlists (pin, exclude, notes) and saved plans kept by the server's workspace.
// Talks to the same app's API with the key the planner enters (kept for this browser tab only).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
// Goals, KPIs, cost figures, platforms, tiers and flags come from GET /api/options (the engine's registries); the page
// keeps no copy of its own. SIDE_KPIS is a presentation choice: the KPIs shown beside the goal's in the roster.
const SIDE_KPIS = ["reach", "conversions"];
let OPTIONS = null;
const goalOf = (name) => OPTIONS.goals.find((g) => g.name === name);
const kpiOf = (name) => OPTIONS.kpis.find((k) => k.name === name) || { name, decimals: 0 };
const costOf = (name) => OPTIONS.cost_figures.find((c) => c.name === name);
const costText = (fig, v) => (fig && fig.kind === "return" ? fmt(v, fig.decimals) : money(v));
let lastPlan = null;
let sortState = { col: null, desc: true };
let shortlist = null; // the chosen shortlist with its items
let searchOffset = 0;
let BRIEFS = {}; // saved briefs by id
let formFilled = false;
const PAGE = 25;

// ------------------------------------------------------------------------------------------------ formatting
function fmt(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (typeof v !== "number") return String(v);
  return v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
// large counts in short form (12.3k, 1.2M); small ones as they are
function compact(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e6) return fmt(v / 1e6, a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e4) return fmt(v / 1e3, a >= 1e5 ? 0 : 1) + "k";
  return fmt(v, a < 10 && v % 1 ? 1 : 0);
}
const money = (v) => (v === null || v === undefined ? "–" : "$" + fmt(v, v < 100 ? 2 : 0));
const pct = (v, d = 0) => (v === null || v === undefined ? "–" : fmt(100 * v, d) + "%");
function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]);
}
function safeUrl(u) {
  return typeof u === "string" && /^https:\/\//.test(u) ? u : null;
}
const COLORS = ["#1f5fbf", "#067647", "#b54708", "#6941c6", "#c11574", "#0e7090", "#4e5ba6"];
function avatar(handle) {
  const h = String(handle || "?").replace(/^@/, "");
  const words = h.split(/[_.\-\s]+/).filter((w) => /^[a-z]/i.test(w));
  const initials = (words.length > 1 ? words[0][0] + words[1][0] : (words[0] || h).slice(0, 2)).toUpperCase();
  let code = 0;
  for (const ch of h) code = (code * 31 + ch.charCodeAt(0)) >>> 0;
  return `<span class="avatar" style="background:${COLORS[code % COLORS.length]}" aria-hidden="true">${escapeHtml(initials)}</span>`;
}
// a creator cell: initials, handle (opens the profile), platform link, platform and tier
function who(r) {
  const url = safeUrl(r.url);
  const link = url ? ` <a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer" title="open on ${escapeHtml(r.platform)}">↗</a>` : "";
  return `<div class="who">${avatar(r.handle || r.creator_id)}<div><a class="open" data-profile="${escapeHtml(r.creator_id)}">@${escapeHtml(String(r.handle || r.creator_id).replace(/^@/, ""))}</a>${link}` +
    `<div class="sub">${[r.platform, r.tier, r.country, HISTORY_NOTE[r.history_source]].filter(Boolean).map(escapeHtml).join(" · ")}</div></div></div>`;
}
// what a creator's history was read from, when not its posts (features.averages)
const HISTORY_NOTE = { averages: "history from averages per post", none: "no post history" };
function whyList(items) {
  if (!items || !items.length) return "";
  return `<ul class="why">${items.map((x) => {
    const e = x.effect;
    const cls = e > 0 ? "up" : e < 0 ? "down" : "";
    const sign = e === null || e === undefined ? "" : `${e > 0 ? "+" : e < 0 ? "−" : "±"}${fmt(Math.abs(100 * e), 0)}% `;
    const text = String(x.text).replace(/:\s*[+\-−]?\d[\d,.]*%\s*\S*$/, "");
    return `<li class="${cls}"><b>${sign}</b>${escapeHtml(text)}</li>`;
  }).join("")}</ul>`;
}
function flagChips(flags) {
  return (flags || []).map((f) => `<span class="chip" title="${escapeHtml((OPTIONS.flags || {})[f] || f)}">${escapeHtml(f.replace(/_/g, " "))}</span>`).join("");
}

// ------------------------------------------------------------------------------------------------ the API
async function api(path, body, method) {
  const key = $("#api-key").value.trim();
  const init = { method: method || (body === undefined ? "GET" : "POST"), headers: { "X-API-Key": key } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) {
    const err = new Error((data.error || res.statusText) + (data.fix ? ` (fix: ${data.fix})` : ""));
    err.status = res.status;
    throw err;
  }
  return data;
}
function say(sel, text, kind = "muted") {
  const el = $(sel);
  el.textContent = text;
  el.className = kind;
}

// ------------------------------------------------------------------------------------------------ the form
function checkboxes(root, name, values, checked = values, labels = null) {
  root.innerHTML = "";
  for (const v of values) {
    const label = document.createElement("label");
    label.className = "check";
    label.innerHTML = `<input type="checkbox" name="${name}" value="${escapeHtml(v)}" ${checked.includes(v) ? "checked" : ""}> ${escapeHtml(labels ? labels[v] : v)}`;
    root.appendChild(label);
  }
}
const checkedValues = (root, name) => $$(`input[name="${name}"]:checked`, root).map((i) => i.value);

function fillOptions(o) {
  OPTIONS = o;
  const ex = o.example_brief || {};
  $("#goal").innerHTML = o.goals.map((g) => `<option value="${g.name}" ${g.name === (ex.goal || "conversions") ? "selected" : ""}>${g.label}</option>`).join("");
  const platforms = o.platforms.map((p) => p.code);
  $("#category").innerHTML = o.categories.map((c) => `<option ${c === ex.brand_category ? "selected" : ""}>${c}</option>`).join("");
  checkboxes($("#age"), "age", o.age, []);
  checkboxes($("#gender"), "gender", o.gender, []);
  checkboxes($("#countries"), "countries", o.countries, []);
  checkboxes($("#tiers"), "tiers", o.tiers);
  checkboxes($("#platforms"), "platforms", platforms);
  checkboxes($("#scenario-a [data-group=tiers]"), "tiers", o.tiers, ["nano", "micro"]);
  checkboxes($("#scenario-a [data-group=platforms]"), "platforms", platforms);
  checkboxes($("#scenario-b [data-group=tiers]"), "tiers", o.tiers);
  checkboxes($("#scenario-b [data-group=platforms]"), "platforms", platforms);
  if (!formFilled) fillForm(ex); // once: connecting again keeps what the planner typed
  formFilled = true;
  // search form
  $("#s-category").innerHTML = `<option value="">any</option>` + o.categories.map((c) => `<option>${c}</option>`).join("");
  checkboxes($("#s-platforms"), "s-platform", platforms, []);
  checkboxes($("#s-tiers"), "s-tier", o.tiers, []);
  const flagLabels = Object.fromEntries(Object.keys(o.flags || {}).map((f) => [f, "hide " + f.replace(/_/g, " ")]));
  checkboxes($("#s-flags"), "s-without", Object.keys(o.flags || {}), ["low_credibility"], flagLabels);
  fillSorts();
}

// the form from a brief (the example brief at connect, so audience fit means something from the start: ticking
// everyone would make every creator a 100% fit; or a saved brief)
function fillForm(b) {
  const f = $("#brief-form");
  const set = (name, v) => { if (v !== null && v !== undefined) f.elements[name].value = v; };
  set("brief_id", b.brief_id);
  set("goal", b.goal);
  set("budget", b.budget);
  set("brand_category", b.brand_category);
  set("start_date", b.start_date || new Date(Date.now() + 30 * 864e5).toISOString().slice(0, 10));
  set("risk", b.risk);
  f.elements.average_order_value.value = b.average_order_value ?? "";
  const target = b.target || {};
  const tick = (root, name, values) => $$(`input[name="${name}"]`, root).forEach((i) => { i.checked = (values || []).includes(i.value); });
  tick($("#age"), "age", target.age);
  tick($("#gender"), "gender", target.gender);
  tick($("#countries"), "countries", target.countries);
  const all = (root, name, values) => $$(`input[name="${name}"]`, root).forEach((i) => { i.checked = !values || !values.length || values.includes(i.value); });
  all($("#tiers"), "tiers", b.tiers);
  all($("#platforms"), "platforms", b.platforms);
  const c = b.constraints || {};
  for (const k of ["roster_min", "roster_max", "max_spend_per_creator", "min_spend_share", "min_audience_fit", "min_credibility"]) {
    f.elements[k].value = c[k] ?? "";
  }
  fillSorts();
}

async function loadBriefs(selectId) {
  const briefs = await api("/api/briefs");
  BRIEFS = Object.fromEntries(briefs.map((b) => [String(b.id), b]));
  $("#saved-briefs").innerHTML = `<option value="">(choose one to load it)</option>` +
    briefs.map((b) => `<option value="${b.id}">${escapeHtml(b.name)} · ${escapeHtml(b.updated_at.slice(0, 10))}</option>`).join("");
  if (selectId !== undefined) $("#saved-briefs").value = String(selectId);
}

async function saveBrief() {
  try {
    const brief = briefFromForm();
    const saved = await api("/api/briefs", { name: brief.brief_id, brief });
    await loadBriefs(saved.id);
    say("#brief-status", `saved as “${saved.name}”`, "ok");
  } catch (e) {
    say("#brief-status", e.message, "error");
  }
}

function fillSorts() {
  const goal = goalOf($("#goal").value);
  const cost = goal && costOf(goal.cost_figure);
  const base = [["followers", "followers"], ["engagement_rate", "engagement rate"], ["median_interactions", "interactions per post"],
    ["median_views", "views per post"], ["quoted_price", "quoted price"], ["audience_credibility", "real followers"]];
  const withBrief = goal ? [[goal.column, `${goal.label} (forecast)`], ...(cost ? [[cost.name, `${cost.label} (forecast)`]] : []),
    ["price", "price for the brief"], ["audience_fit", "audience fit"]] : [];
  const cur = $("#s-sort").value;
  $("#s-sort").innerHTML = [...withBrief, ...base].map(([v, l]) => `<option value="${v}">${escapeHtml(l)}</option>`).join("");
  if (cur && $$("#s-sort option").some((o) => o.value === cur)) $("#s-sort").value = cur;
}

async function connect() {
  sessionStorage.setItem("ie-key", $("#api-key").value.trim());
  try {
    const [o, m] = await Promise.all([api("/api/options"), api("/api/model")]);
    fillOptions(o);
    $("#model-info").textContent = `model ${m.model} (${m.engine_version}, trained ${String(m.created_at).slice(0, 10)}) · ` +
      `${fmt(m.candidates.creators)} candidates` + (m.workspace ? "" : " · no workspace: shortlists and saved plans are off");
    $("#model-info").className = "ok";
    document.body.classList.add("connected");
    $("#connect-first").hidden = true;
    for (const b of $$("main button")) b.disabled = false;
    if (m.workspace) {
      await loadShortlists();
      await loadSaved();
      await loadBriefs();
    }
  } catch (e) {
    $("#model-info").textContent = e.message;
    $("#model-info").className = "error";
    $("#connect-first").hidden = false;
  }
}

function num(form, name) {
  const v = form.elements[name].value;
  return v === "" ? null : Number(v);
}

function briefFromForm() {
  const f = $("#brief-form");
  const constraints = {};
  for (const k of ["roster_min", "roster_max", "max_spend_per_creator", "min_spend_share", "min_audience_fit", "min_credibility"]) {
    const v = num(f, k);
    if (v !== null) constraints[k] = v;
  }
  const brief = {
    brief_id: f.elements.brief_id.value || "brief",
    goal: f.elements.goal.value,
    budget: num(f, "budget"),
    brand_category: f.elements.brand_category.value,
    start_date: f.elements.start_date.value,
    risk: f.elements.risk.value,
    target: { age: checkedValues(f, "age"), gender: checkedValues(f, "gender"), countries: checkedValues(f, "countries") },
    tiers: checkedValues($("#tiers"), "tiers"),
    platforms: checkedValues($("#platforms"), "platforms"),
    constraints,
  };
  const aov = num(f, "average_order_value");
  if (aov !== null) brief.average_order_value = aov;
  return brief;
}

// ------------------------------------------------------------------------------------------------ views
function show(view) {
  $$(".view").forEach((v) => { v.hidden = v.dataset.view !== view; });
  $$("#tabs .tab").forEach((t) => t.classList.toggle("active", t.dataset.view === view));
}

// ------------------------------------------------------------------------------------------------ roster
function stateOf(cid) {
  const it = shortlist && shortlist.items.find((i) => i.creator_id === cid);
  return it ? it.state : null;
}
function actionButtons(cid) {
  const st = stateOf(cid);
  const b = (state, label, cls) => `<button type="button" class="mini ${st === state ? cls : ""}" data-act="${state}" data-cid="${escapeHtml(cid)}" ` +
    `aria-pressed="${st === state}">${label}</button>`;
  return `<div class="acts">${b("shortlisted", st ? "✓ listed" : "+ list", "on")} ${b("pinned", "pin", "on")} ${b("excluded", "exclude", "off")}</div>`;
}

function rosterColumns(goalName) {
  const goal = goalOf(goalName);
  const col = goal.column;
  const digits = goal.value === "emv" ? 0 : kpiOf(col).decimals;
  const show = goal.value === "emv" ? money : (v) => fmt(v, digits);
  const cost = costOf(goal.cost_figure);
  return [
    { key: "handle", label: "Creator", html: (_, r) => who(r) },
    { key: "price", label: "Price", num: true, html: (v, r) => escapeHtml(money(v)) + (r.price_source === "estimated" ? `<div class="sub">estimated</div>` : "") },
    { key: col, label: `${goal.label} (P10–P90)`, num: true,
      html: (v, r) => `${escapeHtml(show(v))}<div class="sub">${escapeHtml(show(r[`${col}_p10`]))} – ${escapeHtml(show(r[`${col}_p90`]))}</div>` },
    ...SIDE_KPIS.filter((k) => k !== col).map((k) => ({ key: k, label: k.charAt(0).toUpperCase() + k.slice(1), num: true, html: (v) => escapeHtml(compact(v)) })),
    { key: cost.name, label: cost.label, num: true, html: (v) => escapeHtml(costText(cost, v)) },
    { key: "audience_fit", label: "Audience fit", num: true,
      html: (v, r) => escapeHtml(pct(v)) + (r.audience_source && r.audience_source !== "given" ? `<div class="sub">${escapeHtml(r.audience_source)}</div>` : "") },
    { key: "why", label: "Why (strongest first)", sortable: false, html: (v) => whyList(v) },
    { key: "actions", label: "", sortable: false, html: (_, r) => actionButtons(r.creator_id) },
  ];
}

function renderRoster() {
  const plan = lastPlan;
  const cols = rosterColumns(plan.goal);
  const rows = [...plan.roster];
  if (sortState.col) {
    const k = sortState.col;
    rows.sort((a, b) => {
      const x = a[k], y = b[k];
      const cmp = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return sortState.desc ? -cmp : cmp;
    });
  }
  $("#roster thead").innerHTML = "<tr>" + cols.map((c) => {
    const mark = sortState.col === c.key ? (sortState.desc ? " ▼" : " ▲") : "";
    const sortable = c.sortable !== false;
    return `<th data-col="${c.key}" class="${c.num ? "num" : ""}" ${sortable ? `tabindex="0" aria-sort="${mark ? (sortState.desc ? "descending" : "ascending") : "none"}"` : ""}>${escapeHtml(c.label)}${mark}</th>`;
  }).join("") + "</tr>";
  $("#roster tbody").innerHTML = rows.map((r) => `<tr data-cid="${escapeHtml(r.creator_id)}">` +
    cols.map((c) => `<td class="${c.num ? "num" : ""}">${c.html(r[c.key], r)}</td>`).join("") + "</tr>").join("");
  $$("#roster th[tabindex]").forEach((th) => th.addEventListener("click", () => {
    const col = th.dataset.col;
    sortState = { col, desc: sortState.col === col ? !sortState.desc : true };
    renderRoster();
  }));
}

function card(label, value, sub = "") {
  return `<div class="card"><div class="label">${escapeHtml(label)}</div><div class="value">${escapeHtml(value)}</div><div class="sub">${escapeHtml(sub)}</div></div>`;
}

function renderTotals(plan) {
  const t = plan.totals;
  const g = t.goal;
  const goal = goalOf(plan.goal);
  const digits = goal.decimals;
  const band = (x) => (x && x.p10 !== null && x.p10 !== undefined ? `P10 ${fmt(x.p10, digits)} – P90 ${fmt(x.p90, digits)}` : "");
  const cost = costOf(goal.cost_figure);
  // the server proves plans with LP bounds by default; where they fall short of the solver's gap, offer the full proof
  const boundsOnly = Boolean(t.solver.details && t.solver.details.proof);
  $("#totals").innerHTML = [
    card("Creators", fmt(t.creators)),
    card("Spend", money(t.spend), `of ${money(t.budget)} budget` + (t.budget_left ? ` · ${pct(t.budget_left.unspent_share)} left` : "")),
    card(`${g.label} (expected)`, fmt(g.expected, digits), band(g)),
    card("Unique reach", compact(t.unique_reach.expected), `${pct(t.unique_reach.duplication)} duplicated`),
    card(cost.label, costText(cost, t.cost_figures[cost.name])),
    card("Solver", t.solver.status, `certified gap ${fmt(100 * t.solver.certified_gap, 2)}%` +
      (boundsOnly ? " (LP bounds)" : "")),
  ].join("") + (boundsOnly
    ? `<button id="prove" type="button" title="Run the MILP that proves the solver's gap (seconds on some budgets)">Prove the gap</button>`
    : "");
  $("#notes").textContent = (plan.notes || []).join(" · ");
  const left = $("#budget-left");
  left.textContent = t.budget_left ? t.budget_left.reason : "";
  left.hidden = !t.budget_left;
  const notes = (t.assumptions && t.assumptions.notes) || [];
  const box = $("#assumptions");
  box.innerHTML = notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("");
  box.hidden = notes.length === 0;
}

function showPlan(plan, title) {
  lastPlan = plan;
  sortState = { col: null, desc: true };
  renderTotals(plan);
  renderRoster();
  $("#roster-title").textContent = title;
  $("#roster-panel").hidden = false;
  $("#plan-name").value = $("#plan-name").value || `${plan.brief_id} ${new Date().toISOString().slice(0, 10)}`;
}

async function planRoster(ev, prove = false) {
  if (ev) ev.preventDefault();
  if (!OPTIONS) return say("#status", "connect first: enter the API key and press Connect", "error");
  say("#status", prove ? "planning, with the full proof…" : "planning…");
  try {
    const body = { brief: briefFromForm() };
    if (shortlist && $("#use-shortlist").checked) body.shortlist_id = shortlist.id;
    if (prove) body.prove = true;
    const plan = await api("/api/plan", body);
    showPlan(plan, "Roster");
    const pinned = (plan.include || []).length, out = (plan.exclude || []).length;
    say("#status", `${plan.roster.length} creators in ${fmt(plan.seconds, 2)} s` + (pinned || out ? ` · ${pinned} pinned, ${out} excluded` : ""));
  } catch (e) {
    say("#status", e.message, "error");
  }
}

// the roster as a spreadsheet: rounded, with units in the column names (as `ie plan` writes roster.csv; the README's
// data dictionary describes each column)
function exportCsv() {
  if (!lastPlan) return;
  const round = (d) => (v) => (v === null || v === undefined ? "" : Math.round(v * 10 ** d) / 10 ** d);
  const unitOf = (k) => ({ USD: "_usd", people: "_people" })[k.unit] || "";
  const cols = [
    ["creator_id", (r) => r.creator_id], ["handle", (r) => r.handle], ["profile_url", (r) => r.url], ["platform", (r) => r.platform],
    ["tier", (r) => r.tier], ["format", (r) => r.format], ["price_usd", (r) => round(2)(r.price)], ["price_source", (r) => r.price_source],
    ...OPTIONS.kpis.flatMap((k) => {
      const rd = round(k.unit === "USD" ? 2 : k.decimals);
      return ["", "_p10", "_p90"].map((s) => [`${k.name}${unitOf(k)}${s}`, (r) => rd(r[k.name + s])]);
    }),
    ...OPTIONS.cost_figures.flatMap((c) => {
      const name = c.name + (c.kind === "cost" ? "_usd" : "");
      const rd = round(c.decimals);
      return [[name, (r) => rd(r[c.name])], [`${name}_if_p90`, (r) => rd(r[`${c.name}_good`])], [`${name}_if_p10`, (r) => rd(r[`${c.name}_bad`])]];
    }),
    ...["", "_p10", "_p90"].map((s) => [`emv_usd${s}`, (r) => round(2)(r["emv" + s])]),
    ["audience_fit_pct", (r) => round(1)(r.audience_fit === null || r.audience_fit === undefined ? null : 100 * r.audience_fit)],
    ["audience_source", (r) => r.audience_source], ["history_source", (r) => r.history_source], ["reasons", (r) => (r.why || []).map((x) => x.text).join("; ") || r.reasons || ""],
  ];
  // text a spreadsheet would run as a formula (= + - @ tab CR first) gets a leading ' (OWASP, CSV injection)
  const cell = (v) => {
    let s = v === null || v === undefined ? "" : String(v);
    if (typeof v === "string" && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const csv = [cols.map((c) => c[0]).join(","), ...lastPlan.roster.map((r) => cols.map((c) => cell(c[1](r))).join(","))].join("\n");
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  a.download = `${lastPlan.brief_id}-roster.csv`;
  document.body.appendChild(a);
  a.click();
  a.remove();
}

// ------------------------------------------------------------------------------------------------ what-if
async function runWhatIf() {
  if (!OPTIONS) return say("#wf-status", "connect first", "error");
  say("#wf-status", "solving every budget…");
  try {
    const brief = briefFromForm();
    const res = await api("/api/whatif", {
      brief,
      budgets: { start: Number($("#wf-start").value), stop: Number($("#wf-stop").value), steps: Number($("#wf-steps").value) },
    });
    drawFrontier(res);
    const bad = res.frontier.filter((r) => r.status === "infeasible").length;
    say("#wf-status", `${res.frontier.length - bad} budgets planned` + (bad ? `, ${bad} infeasible` : ""));
  } catch (e) {
    say("#wf-status", e.message, "error");
  }
}

function drawFrontier(res) {
  const rows = res.frontier.filter((r) => r.status !== "infeasible");
  const names = [...new Set(rows.map((r) => r.scenario))];
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
  const traces = [];
  names.forEach((n, i) => {
    const s = rows.filter((r) => r.scenario === n);
    const x = s.map((r) => r.budget);
    const color = palette[i % palette.length];
    traces.push({ x, y: s.map((r) => r.p10), mode: "lines", line: { width: 0, color }, showlegend: false, hoverinfo: "skip" });
    traces.push({ x, y: s.map((r) => r.p90), mode: "lines", line: { width: 0, color }, fill: "tonexty",
      fillcolor: color + "33", name: `${n} P10–P90` });
    traces.push({ x, y: s.map((r) => r.expected), mode: "lines+markers", line: { color }, name: `${n} expected`,
      customdata: s.map((r) => [r.marginal_per_1000, r.creators]),
      hovertemplate: "$%{x:,.0f}: %{y:,.0f}<br>+$1k adds %{customdata[0]:,.1f}<br>%{customdata[1]} creators<extra></extra>" });
  });
  const label = goalOf(res.goal).label;
  // where each scenario's goal stops rising (the plan stops spending the budget), and what stops it
  const shapes = [];
  const notes = [];
  const stops = [];
  names.forEach((n, i) => {
    const hit = rows.find((r) => r.scenario === n && r.limited_by);
    if (!hit) return;
    const color = palette[i % palette.length];
    shapes.push({ type: "line", x0: hit.budget, x1: hit.budget, yref: "paper", y0: 0, y1: 1, line: { dash: "dash", width: 1, color } });
    notes.push({ x: hit.budget, y: hit.expected, text: `${n}: stops rising at ${money(hit.budget)}`, showarrow: true, font: { size: 10, color } });
    stops.push(`${n}: the goal stops rising at ${money(hit.budget)} (${hit.limited_by})`);
  });
  Plotly.newPlot("frontier-chart", traces, {
    title: { text: `${label} against budget` }, xaxis: { title: { text: "Budget ($)" } },
    yaxis: { title: { text: `${label} (expected, band P10–P90)` } },
    margin: { t: 40, r: 10 }, legend: { orientation: "h", y: -0.2 }, shapes, annotations: notes,
  }, { displaylogo: false, responsive: true });
  $("#wf-limits").textContent = stops.join(" · ");
  $("#wf-limits").hidden = stops.length === 0;
  const base = rows.filter((r) => r.scenario === names[0]);
  const mix = (keys, id, what) => Plotly.newPlot(id, keys.map((k) => ({ type: "bar", x: base.map((r) => r.budget), y: base.map((r) => r[`spend_share_${k}`]), name: k })), {
    title: { text: `Spend by ${what} (${names[0]})` }, barmode: "stack", xaxis: { title: { text: "Budget ($)" } },
    yaxis: { title: { text: "Share of spend" }, tickformat: ".0%" }, legend: { title: { text: what } }, margin: { t: 40, r: 10 },
  }, { displaylogo: false, responsive: true });
  mix(OPTIONS.tiers, "mix-tier-chart", "tier");
  mix(OPTIONS.platforms.map((x) => x.code), "mix-platform-chart", "platform");
}

// ------------------------------------------------------------------------------------------------ compare
function scenarioFrom(root, brief) {
  const constraints = { ...brief.constraints };
  const rmax = Number($("input[name=roster_max]", root).value);
  if (rmax) constraints.roster_max = rmax;
  if (constraints.roster_min && constraints.roster_max && constraints.roster_min > constraints.roster_max) {
    delete constraints.roster_min;
  }
  return {
    name: $("input[name=name]", root).value || root.id,
    tiers: checkedValues($("[data-group=tiers]", root), "tiers"),
    platforms: checkedValues($("[data-group=platforms]", root), "platforms"),
    constraints,
  };
}

async function compare() {
  if (!OPTIONS) return say("#cmp-status", "connect first", "error");
  say("#cmp-status", "planning both…");
  const brief = briefFromForm();
  const scenarios = [scenarioFrom($("#scenario-a"), brief), scenarioFrom($("#scenario-b"), brief)];
  const results = await Promise.all(scenarios.map((s) => api("/api/plan", { brief, scenario: s, reasons: 0 })
    .catch((e) => ({ error: e.message }))));
  const goal = goalOf(brief.goal);
  const cost = costOf(goal.cost_figure);
  const line = (label, f) => `<tr><th>${label}</th>${results.map((r) => `<td>${r.error ? "" : escapeHtml(f(r))}</td>`).join("")}</tr>`;
  const mix = (r, col) => {
    const spend = r.roster.reduce((a, x) => a + (x.price || 0), 0) || 1;
    const by = {};
    r.roster.forEach((x) => { by[x[col]] = (by[x[col]] || 0) + (x.price || 0); });
    return Object.entries(by).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${pct(v / spend)}`).join(", ");
  };
  $("#comparison thead").innerHTML = `<tr><th></th>${scenarios.map((s) => `<th>${escapeHtml(s.name)}</th>`).join("")}</tr>`;
  $("#comparison tbody").innerHTML = [
    `<tr><th>Result</th>${results.map((r) => `<td class="${r.error ? "error" : ""}">${r.error ? escapeHtml(r.error) : "planned"}</td>`).join("")}</tr>`,
    line("Creators", (r) => fmt(r.totals.creators)),
    line("Spend", (r) => money(r.totals.spend)),
    line(`${goal.label} expected`, (r) => fmt(r.totals.goal.expected, goal.decimals)),
    line(`${goal.label} P10–P90`, (r) => `${fmt(r.totals.goal.p10, goal.decimals)} – ${fmt(r.totals.goal.p90, goal.decimals)}`),
    line("Unique reach", (r) => fmt(r.totals.unique_reach.expected)),
    line(cost.label, (r) => costText(cost, r.totals.cost_figures[cost.name])),
    line("Tier mix (spend)", (r) => mix(r, "tier")),
    line("Platform mix (spend)", (r) => mix(r, "platform")),
  ].join("");
  say("#cmp-status", "");
}

// ------------------------------------------------------------------------------------------------ search
function searchParams() {
  const f = $("#search-form");
  const p = new URLSearchParams();
  const add = (k, v) => { if (v !== null && v !== undefined && v !== "") p.append(k, v); };
  add("q", f.elements.q.value.trim());
  add("category", f.elements.category.value);
  add("country", f.elements.country.value.trim().toUpperCase());
  for (const k of ["followers_min", "followers_max", "price_min", "price_max"]) add(k, f.elements[k].value);
  for (const k of ["er_min", "er_max"]) if (f.elements[k].value !== "") add(k, Number(f.elements[k].value) / 100);
  checkedValues($("#s-platforms"), "s-platform").forEach((v) => add("platform", v));
  checkedValues($("#s-tiers"), "s-tier").forEach((v) => add("tier", v));
  checkedValues($("#s-flags"), "s-without").forEach((v) => add("without_flag", v));
  const sort = f.elements.sort.value;
  const needsBrief = !["followers", "engagement_rate", "median_interactions", "median_views", "quoted_price", "audience_credibility"].includes(sort);
  if (f.elements.with_brief.checked || needsBrief) add("brief", JSON.stringify(briefFromForm()));
  add("sort", sort);
  add("order", f.elements.order.value);
  add("offset", searchOffset);
  add("limit", PAGE);
  return p;
}

async function search(ev) {
  if (ev) { ev.preventDefault(); searchOffset = 0; }
  if (!OPTIONS) return say("#search-status", "connect first: enter the API key and press Connect", "error");
  say("#search-status", "searching…");
  try {
    const res = await api("/api/creators?" + searchParams().toString());
    renderResults(res);
    say("#search-status", `${fmt(res.total)} creators match · ${fmt(1000 * res.seconds, 0)} ms`);
  } catch (e) {
    say("#search-status", e.message, "error");
  }
}

function renderResults(res) {
  const goal = goalOf($("#goal").value);
  const cost = costOf(goal.cost_figure);
  const withBrief = res.brief_id !== null;
  const cols = [
    ["Creator", (r) => who(r)],
    ["Followers", (r) => escapeHtml(compact(r.followers)), true],
    ["Eng. rate", (r) => escapeHtml(pct(r.engagement_rate, 1)) + `<div class="sub">${escapeHtml(compact(r.median_interactions))} per post</div>`, true],
    ["Price", (r) => escapeHtml(money(withBrief ? r.price : r.quoted_price)) + ((withBrief ? r.price_source === "estimated" : r.quoted_price === null) ? `<div class="sub">estimated</div>` : ""), true],
    ...(withBrief ? [
      [`${goal.label} (P10–P90)`, (r) => `${escapeHtml(fmt(r[goal.column], goal.decimals))}<div class="sub">${escapeHtml(fmt(r[goal.column + "_p10"], goal.decimals))} – ${escapeHtml(fmt(r[goal.column + "_p90"], goal.decimals))}</div>`, true],
      [cost.label, (r) => escapeHtml(costText(cost, r[cost.name])), true],
      ["Audience fit", (r) => escapeHtml(pct(r.audience_fit)), true],
    ] : []),
    ["Flags", (r) => `<div class="chips">${flagChips(r.flags)}</div>`],
    ["", (r) => actionButtons(r.creator_id)],
  ];
  $("#results thead").innerHTML = "<tr>" + cols.map((c) => `<th class="${c[2] ? "num" : ""}">${escapeHtml(c[0])}</th>`).join("") + "</tr>";
  $("#results tbody").innerHTML = res.rows.map((r) => `<tr data-cid="${escapeHtml(r.creator_id)}">` + cols.map((c) => `<td class="${c[2] ? "num" : ""}">${c[1](r)}</td>`).join("") + "</tr>").join("")
    || `<tr><td colspan="${cols.length}" class="muted">No creator matches: loosen a filter.</td></tr>`;
  const end = Math.min(res.offset + res.rows.length, res.total);
  $("#page-info").textContent = res.total ? `${fmt(res.offset + 1)}–${fmt(end)} of ${fmt(res.total)}` : "";
  $("#prev").disabled = res.offset === 0;
  $("#next").disabled = end >= res.total;
}

// ------------------------------------------------------------------------------------------------ profile
async function openProfile(cid) {
  const drawer = $("#profile");
  drawer.hidden = false;
  drawer.dataset.cid = cid;
  $("#profile-id").innerHTML = `<span class="muted">loading ${escapeHtml(cid)}…</span>`;
  $("#profile-body").innerHTML = "";
  $("#profile-forecast").innerHTML = "";
  $("#profile-actions").innerHTML = "";
  Plotly.purge("profile-chart");
  try {
    const p = await api(`/api/creators/${encodeURIComponent(cid)}?` + new URLSearchParams({ brief: JSON.stringify(briefFromForm()) }));
    renderProfile(p);
  } catch (e) {
    $("#profile-id").innerHTML = `<span class="error">${escapeHtml(e.message)}</span>`;
  }
}

function bars(shares, top = 6) {
  const items = Object.entries(shares || {}).filter(([, v]) => v !== null && v !== undefined).sort((a, b) => b[1] - a[1]).slice(0, top);
  if (!items.length) return `<p class="muted">not known</p>`;
  return `<div class="bars">${items.map(([k, v]) => `<span>${escapeHtml(k.replace(/_/g, "–"))}</span><span><span class="bar" style="display:block;width:${Math.max(1, 100 * v).toFixed(0)}%"></span></span><span>${escapeHtml(pct(v))}</span>`).join("")}</div>`;
}

function renderProfile(p) {
  const c = p.creator;
  const url = safeUrl(c.url);
  $("#profile-id").innerHTML = `<div class="who">${avatar(c.handle)}<div><h3>@${escapeHtml(String(c.handle).replace(/^@/, ""))}</h3>` +
    `<div class="sub">${escapeHtml(c.platform)} · ${escapeHtml(c.tier)} · ${escapeHtml(compact(c.followers))} followers · ${escapeHtml(c.country || "country unknown")}` +
    `${url ? ` · <a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer">profile ↗</a>` : ""}</div></div></div>`;
  $("#profile-actions").innerHTML = actionButtons(c.creator_id);
  const bp = (p.prices && p.prices.brief) || null;
  const quoted = Object.entries((p.prices && p.prices.quoted) || {}).map(([k, v]) => `${k} ${money(v)}`).join(", ") || "none quoted";
  const price = bp ? `${money(bp.price)} for a ${bp.format} post (${bp.source}${bp.source === "estimated" ? `, P10–P90 ${money(bp.p10)} – ${money(bp.p90)}` : ""})` : "";
  const a = p.audience;
  const lists = (p.shortlists || []).map((s) => `${s.name} (${s.state}${s.note ? ": " + s.note : ""})`).join(", ");
  $("#profile-body").innerHTML = `
    <table class="kv"><tbody>
      <tr><th>Categories</th><td>${escapeHtml((c.categories || []).join(", ") || "–")}</td></tr>
      <tr><th>Recent results</th><td>${escapeHtml(compact(c.median_interactions))} interactions and ${escapeHtml(compact(c.median_views))} views per post (median of the last 20) · engagement rate ${escapeHtml(pct(c.engagement_rate, 1))}</td></tr>
      <tr><th>Posts</th><td>${escapeHtml(fmt(p.posts_total))}, the last on ${escapeHtml(String(c.last_post_at || "–").slice(0, 10))}</td></tr>
      <tr><th>Price</th><td>${escapeHtml(price || "")}${price ? "<br>" : ""}<span class="sub">quoted: ${escapeHtml(quoted)}</span></td></tr>
      <tr><th>Real followers</th><td>${escapeHtml(c.audience_credibility === null ? "not measured (estimated)" : pct(c.audience_credibility))}</td></tr>
      <tr><th>Flags</th><td>${p.flags.length ? p.flags.map((f) => `<div><span class="chip">${escapeHtml(f.flag.replace(/_/g, " "))}</span> ${escapeHtml(f.reason)}</div>`).join("") : "none"}</td></tr>
      ${lists ? `<tr><th>On shortlists</th><td>${escapeHtml(lists)}</td></tr>` : ""}
    </tbody></table>
    <h4>Audience <span class="chip info">${escapeHtml(a.source)}</span></h4>
    <div class="two">${["audience_age", "audience_gender", "audience_country"].map((g) => `<div><div class="sub">${g.replace("audience_", "")}</div>${bars(a[g])}</div>`).join("")}</div>`;
  const posts = p.posts || [];
  if (posts.length) {
    const x = posts.map((q) => q.posted_at);
    const sp = posts.filter((q) => q.sponsored);
    Plotly.newPlot("profile-chart", [
      { x, y: posts.map((q) => q.interactions), mode: "lines+markers", name: "interactions", marker: { size: 4 } },
      { x, y: posts.map((q) => q.views), mode: "lines", name: "views", yaxis: "y2", line: { dash: "dot" } },
      { x: sp.map((q) => q.posted_at), y: sp.map((q) => q.interactions), mode: "markers", name: "sponsored", marker: { size: 9, symbol: "star", color: "#b54708" } },
    ], {
      title: { text: `Last ${posts.length} posts` }, xaxis: { title: { text: "Posted" } },
      yaxis: { title: { text: "Interactions (likes + comments)" } }, yaxis2: { title: { text: "Views" }, overlaying: "y", side: "right" },
      legend: { orientation: "h", y: -0.3 }, margin: { t: 40, r: 50, l: 60 },
    }, { displaylogo: false, responsive: true });
  }
  const fc = p.forecast;
  if (fc) {
    const r = fc.creator;
    const rows = OPTIONS.kpis.map((k) => `<tr><td>${escapeHtml(k.name)}</td><td class="num">${escapeHtml(fmt(r[k.name], k.decimals))}</td><td class="num">${escapeHtml(fmt(r[k.name + "_p10"], k.decimals))} – ${escapeHtml(fmt(r[k.name + "_p90"], k.decimals))}</td></tr>`).join("");
    // strongest first on the log scale (x0.5 is as strong as x2), as the engine ranks them
    const strength = (x) => Math.abs(Math.log1p(Math.max(x.effect || 0, -0.999999)));
    const ranked = [...(fc.reasons || [])].sort((x, y) => strength(y) - strength(x));
    $("#profile-forecast").innerHTML = `<h4>Forecast for the brief (${escapeHtml(r.format)} post)</h4>
      <table><thead><tr><th>KPI</th><th class="num">expected</th><th class="num">P10 – P90</th></tr></thead><tbody>${rows}</tbody></table>
      <h4>Why (${escapeHtml(fc.goal_kpi)})</h4>${whyList(ranked)}`;
  } else if (p.forecast_error) {
    $("#profile-forecast").innerHTML = `<p class="error">${escapeHtml(p.forecast_error)}</p>`;
  }
}

// ------------------------------------------------------------------------------------------------ shortlists
async function loadShortlists(selectId) {
  const lists = await api("/api/shortlists");
  const sel = $("#shortlist-select");
  const keep = selectId !== undefined ? String(selectId) : sel.value || localStorage.getItem("ie-shortlist") || "";
  sel.innerHTML = `<option value="">(none)</option>` + lists.map((s) => `<option value="${s.id}">${escapeHtml(s.name)} (${s.counts.shortlisted + s.counts.pinned + s.counts.excluded})</option>`).join("");
  sel.value = lists.some((s) => String(s.id) === keep) ? keep : "";
  await chooseShortlist();
}

async function chooseShortlist() {
  const id = $("#shortlist-select").value;
  localStorage.setItem("ie-shortlist", id);
  shortlist = id ? await api(`/api/shortlists/${id}`) : null;
  renderShortlist();
}

function renderShortlist() {
  $("#use-shortlist-name").textContent = shortlist ? `“${shortlist.name}”` : "(none chosen)";
  const n = shortlist ? shortlist.items.length : 0;
  $("#tab-count").textContent = n ? String(n) : "";
  const body = $("#shortlist-items tbody");
  $("#shortlist-items thead").innerHTML = "<tr><th>Creator</th><th>State</th><th>Note</th><th></th></tr>";
  if (!shortlist) {
    body.innerHTML = `<tr><td colspan="4" class="muted">Choose or create a shortlist.</td></tr>`;
  } else if (!n) {
    body.innerHTML = `<tr><td colspan="4" class="muted">No creators yet: add them from “Find creators” or a roster.</td></tr>`;
  } else {
    body.innerHTML = shortlist.items.map((i) => `<tr data-cid="${escapeHtml(i.creator_id)}"><td>${who(i)}</td>` +
      `<td><select class="item-state" data-cid="${escapeHtml(i.creator_id)}">${["shortlisted", "pinned", "excluded"].map((s) => `<option ${s === i.state ? "selected" : ""}>${s}</option>`).join("")}</select></td>` +
      `<td><input class="item-note" data-cid="${escapeHtml(i.creator_id)}" value="${escapeHtml(i.note)}" placeholder="note"></td>` +
      `<td><button type="button" class="mini off" data-remove="${escapeHtml(i.creator_id)}">remove</button></td></tr>`).join("");
  }
  refreshActionButtons();
}

function refreshActionButtons() {
  $$("button[data-act]").forEach((b) => {
    const st = stateOf(b.dataset.cid);
    const on = st === b.dataset.act;
    b.classList.toggle("on", on && b.dataset.act !== "excluded");
    b.classList.toggle("off", on && b.dataset.act === "excluded");
    b.setAttribute("aria-pressed", String(on));
    if (b.dataset.act === "shortlisted") b.textContent = st ? "✓ listed" : "+ list";
  });
}

async function ensureShortlist() {
  if (shortlist) return shortlist;
  const name = `${briefFromForm().brief_id} shortlist`;
  const made = await api("/api/shortlists", { name }).catch(async (e) => {
    if (e.status !== 409) throw e;
    const all = await api("/api/shortlists");
    return all.find((s) => s.name === name);
  });
  await loadShortlists(made.id);
  return shortlist;
}

async function setState(cid, state) {
  try {
    const s = await ensureShortlist();
    const current = stateOf(cid);
    // pressing a creator's current state again takes it off the shortlist
    shortlist = current === state
      ? await api(`/api/shortlists/${s.id}/items/${encodeURIComponent(cid)}`, undefined, "DELETE")
      : await api(`/api/shortlists/${s.id}/items/${encodeURIComponent(cid)}`, { state }, "PUT");
    renderShortlist();
    say("#shortlist-status", `saved in “${shortlist.name}”`, "ok");
  } catch (e) {
    say("#shortlist-status", e.message, "error");
    say("#status", e.message, "error");
  }
}

async function createShortlist() {
  const name = $("#shortlist-name").value.trim();
  if (!name) return say("#shortlist-status", "give the new shortlist a name", "error");
  try {
    const s = await api("/api/shortlists", { name });
    $("#shortlist-name").value = "";
    await loadShortlists(s.id);
    say("#shortlist-status", `created “${s.name}”`, "ok");
  } catch (e) {
    say("#shortlist-status", e.message, "error");
  }
}

async function deleteShortlist() {
  if (!shortlist) return;
  if (!confirm(`Delete the shortlist “${shortlist.name}” for everyone?`)) return;
  await api(`/api/shortlists/${shortlist.id}`, undefined, "DELETE");
  await loadShortlists("");
}

// ------------------------------------------------------------------------------------------------ saved plans
async function loadSaved() {
  const plans = await api("/api/plans");
  $("#saved-plans thead").innerHTML = "<tr><th>Name</th><th>Goal</th><th class='num'>Budget</th><th class='num'>Creators</th><th class='num'>Spend</th><th>Saved</th><th>Note</th><th></th></tr>";
  $("#saved-plans tbody").innerHTML = plans.map((p) => `<tr><td>${escapeHtml(p.name)}</td><td>${escapeHtml(p.goal)}</td>` +
    `<td class="num">${escapeHtml(money(p.budget))}</td><td class="num">${escapeHtml(fmt(p.creators))}</td><td class="num">${escapeHtml(money(p.spend))}</td>` +
    `<td>${escapeHtml(p.created_at.slice(0, 16).replace("T", " "))}</td><td>${escapeHtml(p.note)}</td>` +
    `<td><button type="button" class="mini" data-open-plan="${p.id}">open</button> <button type="button" class="mini off" data-delete-plan="${p.id}">delete</button></td></tr>`).join("")
    || `<tr><td colspan="8" class="muted">No saved plans yet: plan a brief and press “Save plan”.</td></tr>`;
}

async function savePlan() {
  if (!lastPlan) return;
  const name = $("#plan-name").value.trim() || lastPlan.brief_id;
  say("#save-status", "saving…");
  try {
    const body = { name, brief: briefFromForm() };
    if (shortlist && $("#use-shortlist").checked) body.shortlist_id = shortlist.id;
    const saved = await api("/api/plans", body);
    say("#save-status", `saved as “${saved.name}”`, "ok");
    await loadSaved();
  } catch (e) {
    say("#save-status", e.message, "error");
  }
}

async function openSaved(id) {
  const p = await api(`/api/plans/${id}`);
  showPlan({ goal: p.brief.goal, brief_id: p.brief.brief_id, roster: p.roster, totals: p.totals, notes: [] }, `Saved plan “${p.name}”`);
  show("plan");
  $("#roster-panel").scrollIntoView();
}

// ------------------------------------------------------------------------------------------------ wiring
$("#connect").addEventListener("click", connect);
$("#brief-form").addEventListener("submit", (ev) => planRoster(ev));
$("#totals").addEventListener("click", (ev) => { if (ev.target.id === "prove") planRoster(null, true); });
$("#goal").addEventListener("change", fillSorts);
$("#export").addEventListener("click", exportCsv);
$("#whatif").addEventListener("click", runWhatIf);
$("#compare").addEventListener("click", compare);
$("#search-form").addEventListener("submit", search);
$("#prev").addEventListener("click", () => { searchOffset = Math.max(0, searchOffset - PAGE); search(); });
$("#next").addEventListener("click", () => { searchOffset += PAGE; search(); });
$("#profile-close").addEventListener("click", () => { $("#profile").hidden = true; });
$("#shortlist-select").addEventListener("change", chooseShortlist);
$("#shortlist-create").addEventListener("click", createShortlist);
$("#shortlist-delete").addEventListener("click", deleteShortlist);
$("#save-plan").addEventListener("click", savePlan);
$("#save-brief").addEventListener("click", saveBrief);
$("#saved-briefs").addEventListener("change", () => {
  const b = BRIEFS[$("#saved-briefs").value];
  if (b) { fillForm(b.brief); say("#brief-status", `loaded “${b.name}”`, "ok"); }
});
$("#replan").addEventListener("click", () => { $("#use-shortlist").checked = true; show("plan"); planRoster(); });
$$("#tabs .tab").forEach((t) => t.addEventListener("click", () => show(t.dataset.view)));
document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("#profile").hidden = true; });
// one listener for every creator link and action button, wherever the table is
document.addEventListener("click", (e) => {
  const open = e.target.closest("[data-profile]");
  if (open) { e.preventDefault(); openProfile(open.dataset.profile); return; }
  const act = e.target.closest("button[data-act]");
  if (act) { setState(act.dataset.cid, act.dataset.act); return; }
  const rm = e.target.closest("button[data-remove]");
  if (rm && shortlist) { setState(rm.dataset.remove, stateOf(rm.dataset.remove)); return; }
  const op = e.target.closest("button[data-open-plan]");
  if (op) { openSaved(op.dataset.openPlan).catch((err) => say("#saved-status", err.message, "error")); return; }
  const del = e.target.closest("button[data-delete-plan]");
  if (del && confirm("Delete this saved plan?")) api(`/api/plans/${del.dataset.deletePlan}`, undefined, "DELETE").then(loadSaved);
});
document.addEventListener("change", async (e) => {
  if (!shortlist) return;
  const st = e.target.closest("select.item-state");
  const note = e.target.closest("input.item-note");
  const cid = (st || note) && (st || note).dataset.cid;
  if (!cid) return;
  try {
    shortlist = await api(`/api/shortlists/${shortlist.id}/items/${encodeURIComponent(cid)}`, st ? { state: st.value } : { note: note.value }, "PUT");
    renderShortlist();
    say("#shortlist-status", "saved", "ok");
  } catch (err) {
    say("#shortlist-status", err.message, "error");
  }
});
// before the key is in, nothing that needs the server can run: the callout says what to do
for (const b of $$("main button")) b.disabled = true;
const saved = sessionStorage.getItem("ie-key");
if (saved) {
  $("#api-key").value = saved;
  connect();
}
