// The planners' page: a brief form, the roster, the budget what-if and a comparison of two scenarios.
// Talks to the same app's API with the key the planner enters (kept for this browser tab only).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
// Goals, KPIs, cost figures, platforms and tiers come from GET /api/options (the engine's registries); the page
// keeps no copy of its own. SIDE_KPIS is a presentation choice: the KPIs shown beside the goal's in the roster.
const SIDE_KPIS = ["reach", "engagements", "clicks", "conversions"];
let OPTIONS = null;
const goalOf = (name) => OPTIONS.goals.find((g) => g.name === name);
const kpiOf = (name) => OPTIONS.kpis.find((k) => k.name === name) || { name, decimals: 0 };
const costOf = (name) => OPTIONS.cost_figures.find((c) => c.name === name);
const costText = (fig, v) => (fig && fig.kind === "return" ? fmt(v, fig.decimals) : money(v));
let lastPlan = null;
let sortState = { col: null, desc: true };

function fmt(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (typeof v !== "number") return String(v);
  return v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
const money = (v) => (v === null || v === undefined ? "–" : "$" + fmt(v, v < 100 ? 2 : 0));
const pct = (v) => (v === null || v === undefined ? "–" : fmt(100 * v, 0) + "%");

async function api(path, body) {
  const key = $("#api-key").value.trim();
  const init = { method: body === undefined ? "GET" : "POST", headers: { "X-API-Key": key } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) {
    const err = new Error((data.error || res.statusText) + (data.fix ? ` (fix: ${data.fix})` : ""));
    err.status = res.status;
    throw err;
  }
  return data;
}

function checkboxes(root, name, values, checked = values) {
  root.innerHTML = "";
  for (const v of values) {
    const label = document.createElement("label");
    label.className = "check";
    label.innerHTML = `<input type="checkbox" name="${name}" value="${v}" ${checked.includes(v) ? "checked" : ""}> ${v}`;
    root.appendChild(label);
  }
}
const checkedValues = (root, name) => $$(`input[name="${name}"]:checked`, root).map((i) => i.value);

function fillOptions(o) {
  OPTIONS = o;
  $("#goal").innerHTML = o.goals.map((g) => `<option value="${g.name}" ${g.name === "conversions" ? "selected" : ""}>${g.name}</option>`).join("");
  const platforms = o.platforms.map((p) => p.code);
  $("#category").innerHTML = o.categories.map((c) => `<option>${c}</option>`).join("");
  checkboxes($("#age"), "age", o.age);
  checkboxes($("#gender"), "gender", o.gender);
  checkboxes($("#countries"), "countries", o.countries);
  checkboxes($("#tiers"), "tiers", o.tiers);
  checkboxes($("#platforms"), "platforms", platforms);
  checkboxes($("#scenario-a [data-group=tiers]"), "tiers", o.tiers, ["nano", "micro"]);
  checkboxes($("#scenario-a [data-group=platforms]"), "platforms", platforms);
  checkboxes($("#scenario-b [data-group=tiers]"), "tiers", o.tiers);
  checkboxes($("#scenario-b [data-group=platforms]"), "platforms", platforms);
  const start = $("input[name=start_date]");
  if (!start.value) {
    const d = new Date(Date.now() + 30 * 864e5);
    start.value = d.toISOString().slice(0, 10);
  }
}

async function connect() {
  sessionStorage.setItem("ie-key", $("#api-key").value.trim());
  try {
    const [o, m] = await Promise.all([api("/api/options"), api("/api/model")]);
    fillOptions(o);
    $("#model-info").textContent = `model ${m.model} (${m.engine_version}, trained ${String(m.created_at).slice(0, 10)}) · ` +
      `${fmt(m.candidates.creators)} candidates`;
    $("#model-info").className = "ok";
  } catch (e) {
    $("#model-info").textContent = e.message;
    $("#model-info").className = "error";
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

// ------------------------------------------------------------------------------------------------ roster
function rosterColumns(goalName) {
  const goal = goalOf(goalName);
  const col = goal.column;
  const digits = goal.value === "emv" ? 0 : kpiOf(col).decimals;
  const show = goal.value === "emv" ? money : (v) => fmt(v, digits);
  const cost = costOf(goal.cost_figure);
  const title = (k) => k.charAt(0).toUpperCase() + k.slice(1);
  return [
    { key: "creator_id", label: "Creator" },
    { key: "platform", label: "Platform" },
    { key: "tier", label: "Tier" },
    { key: "price", label: "Price", f: (v, r) => money(v) + (r.price_source === "estimated" ? " (est.)" : "") },
    { key: col, label: `${col} expected`, f: show },
    { key: `${col}_band`, label: `${col} P10–P90`, sortKey: `${col}_p10`,
      f: (_, r) => `${show(r[`${col}_p10`])} – ${show(r[`${col}_p90`])}` },
    ...SIDE_KPIS.filter((k) => k !== col).map((k) => ({ key: k, label: title(k), f: (v) => fmt(v, kpiOf(k).decimals) })),
    { key: cost.name, label: cost.label, f: (v) => costText(cost, v) },
    { key: "audience_fit", label: "Audience fit",
      f: (v, r) => pct(v) + (r.audience_source === "assumed" ? " (assumed)" : r.audience_source === "unknown" ? " (unknown)" : "") },
    { key: "reasons", label: "Why" },
  ];
}

function renderRoster() {
  const plan = lastPlan;
  const cols = rosterColumns(plan.goal);
  const rows = [...plan.roster];
  if (sortState.col) {
    const c = cols.find((x) => x.key === sortState.col);
    const k = (c && c.sortKey) || sortState.col;
    rows.sort((a, b) => {
      const x = a[k], y = b[k];
      const cmp = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return sortState.desc ? -cmp : cmp;
    });
  }
  $("#roster thead").innerHTML = "<tr>" + cols.map((c) => {
    const mark = sortState.col === c.key ? (sortState.desc ? " ▼" : " ▲") : "";
    return `<th data-col="${c.key}" tabindex="0" aria-sort="${mark ? (sortState.desc ? "descending" : "ascending") : "none"}">${c.label}${mark}</th>`;
  }).join("") + "</tr>";
  $("#roster tbody").innerHTML = rows.map((r) => "<tr>" + cols.map((c) => {
    const v = r[c.key];
    const text = c.f ? c.f(v, r) : (v === null || v === undefined ? "–" : String(v));
    return `<td class="${c.key === "reasons" ? "why" : ""}">${escapeHtml(text)}</td>`;
  }).join("") + "</tr>").join("");
  $$("#roster th").forEach((th) => th.addEventListener("click", () => {
    const col = th.dataset.col;
    sortState = { col, desc: sortState.col === col ? !sortState.desc : true };
    renderRoster();
  }));
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[ch]);
}

function card(label, value, sub = "") {
  return `<div class="card"><div class="label">${label}</div><div class="value">${value}</div><div class="sub">${sub}</div></div>`;
}

function renderTotals(plan) {
  const t = plan.totals;
  const g = t.goal;
  const goal = goalOf(plan.goal);
  const digits = goal.decimals;
  const band = (x) => (x && x.p10 !== null && x.p10 !== undefined ? `P10 ${fmt(x.p10, digits)} – P90 ${fmt(x.p90, digits)}` : "");
  const cost = costOf(goal.cost_figure);
  $("#totals").innerHTML = [
    card("Creators", fmt(t.creators)),
    card("Spend", money(t.spend), `of ${money(t.budget)} budget` + (t.budget_left ? ` · ${pct(t.budget_left.unspent_share)} left` : "")),
    card(`${g.label} (expected)`, fmt(g.expected, digits), band(g)),
    card("Unique reach", fmt(t.unique_reach.expected), `${pct(t.unique_reach.duplication)} duplicated`),
    card(cost.label, costText(cost, t.cost_figures[cost.name])),
    card("Solver", t.solver.status, `certified gap ${fmt(100 * t.solver.certified_gap, 2)}%`),
  ].join("");
  $("#notes").textContent = (plan.notes || []).join(" · ");
  const left = $("#budget-left");
  if (t.budget_left) {
    left.textContent = t.budget_left.reason;
    left.hidden = false;
  } else {
    left.textContent = "";
    left.hidden = true;
  }
  const notes = (t.assumptions && t.assumptions.notes) || [];
  const box = $("#assumptions");
  box.innerHTML = notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("");
  box.hidden = notes.length === 0;
}

async function planRoster(ev) {
  ev.preventDefault();
  $("#status").textContent = "planning…";
  $("#status").className = "muted";
  try {
    const plan = await api("/api/plan", { brief: briefFromForm() });
    lastPlan = plan;
    sortState = { col: null, desc: true };
    renderTotals(plan);
    renderRoster();
    $("#roster-panel").hidden = false;
    $("#status").textContent = `${plan.roster.length} creators in ${fmt(plan.seconds, 2)} s`;
  } catch (e) {
    $("#status").textContent = e.message;
    $("#status").className = "error";
  }
}

function exportCsv() {
  if (!lastPlan) return;
  const rows = lastPlan.roster;
  const cols = Object.keys(rows[0] || {});
  // text a spreadsheet would run as a formula (= + - @ tab CR first) gets a leading ' (OWASP, CSV injection)
  const cell = (v) => {
    let s = v === null || v === undefined ? "" : String(v);
    if (typeof v === "string" && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const csv = [cols.join(","), ...rows.map((r) => cols.map((c) => cell(r[c])).join(","))].join("\n");
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  a.download = `${lastPlan.brief_id}-shortlist.csv`;
  document.body.appendChild(a);
  a.click();
  a.remove();
}

// ------------------------------------------------------------------------------------------------ what-if
async function runWhatIf() {
  $("#wf-status").textContent = "solving every budget…";
  $("#wf-status").className = "muted";
  try {
    const brief = briefFromForm();
    const res = await api("/api/whatif", {
      brief,
      budgets: { start: Number($("#wf-start").value), stop: Number($("#wf-stop").value), steps: Number($("#wf-steps").value) },
    });
    drawFrontier(res);
    const bad = res.frontier.filter((r) => r.status === "infeasible").length;
    $("#wf-status").textContent = `${res.frontier.length - bad} budgets planned` + (bad ? `, ${bad} infeasible` : "");
  } catch (e) {
    $("#wf-status").textContent = e.message;
    $("#wf-status").className = "error";
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
    title: `${label} against budget`, xaxis: { title: "budget ($)" }, yaxis: { title: `${label} (expected, band P10–P90)` },
    margin: { t: 40, r: 10 }, legend: { orientation: "h" }, shapes, annotations: notes,
  }, { displaylogo: false, responsive: true });
  $("#wf-limits").textContent = stops.join(" · ");
  $("#wf-limits").hidden = stops.length === 0;
  const base = rows.filter((r) => r.scenario === names[0]);
  const mix = [];
  for (const t of OPTIONS.tiers) {
    mix.push({ type: "bar", x: base.map((r) => r.budget), y: base.map((r) => r[`spend_share_${t}`]), name: t });
  }
  for (const p of OPTIONS.platforms.map((x) => x.code)) {
    mix.push({ type: "bar", x: base.map((r) => r.budget), y: base.map((r) => r[`spend_share_${p}`]), name: p,
      xaxis: "x2", yaxis: "y2" });
  }
  Plotly.newPlot("mix-chart", mix, {
    title: `Mix of spend (${names[0]})`, barmode: "stack", grid: { rows: 1, columns: 2, pattern: "independent" },
    xaxis: { title: "budget ($), by tier" }, xaxis2: { title: "budget ($), by platform" },
    yaxis: { tickformat: ".0%" }, yaxis2: { tickformat: ".0%" }, margin: { t: 40, r: 10 },
  }, { displaylogo: false, responsive: true });
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
  $("#cmp-status").textContent = "planning both…";
  $("#cmp-status").className = "muted";
  const brief = briefFromForm();
  const scenarios = [scenarioFrom($("#scenario-a"), brief), scenarioFrom($("#scenario-b"), brief)];
  const results = await Promise.all(scenarios.map((s) => api("/api/plan", { brief, scenario: s, reasons: 0 })
    .catch((e) => ({ error: e.message }))));
  const goal = goalOf(brief.goal);
  const cost = costOf(goal.cost_figure);
  const line = (label, f) => `<tr><th>${label}</th>${results.map((r) => `<td>${r.error ? "" : f(r)}</td>`).join("")}</tr>`;
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
  $("#cmp-status").textContent = "";
}

// ------------------------------------------------------------------------------------------------ wiring
$("#connect").addEventListener("click", connect);
$("#brief-form").addEventListener("submit", planRoster);
$("#export").addEventListener("click", exportCsv);
$("#whatif").addEventListener("click", runWhatIf);
$("#compare").addEventListener("click", compare);
const saved = sessionStorage.getItem("ie-key");
if (saved) {
  $("#api-key").value = saved;
  connect();
}
