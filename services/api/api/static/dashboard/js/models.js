// The model page: one model's whole training report (evaluation against its baselines, the
// backtest of its signals after costs on either side, the activation gate, the equity curves),
// every registered model with its headline figures, and the live scorecard. The report shown is
// the one named in the address (#model=<id>), else the active model, else the newest: a refused
// model's backtest is as worth reading as the active one's.
import { getJson } from "./api.js";

const STRATEGY_LABELS = {
  model: "Model", always_hold: "Always hold", majority: "Majority class", rules: "Rule engine", buy_and_hold: "Buy and hold",
};
const SIDE_LABELS = { long_flat: "Long / flat", long_short: "Long / short" };
const pct = (v) => (Number.isFinite(Number(v)) && v !== null ? `${(Number(v) * 100).toFixed(1)}%` : "–");
const fixed = (v, d = 3) => (Number.isFinite(Number(v)) && v !== null ? Number(v).toFixed(d) : "–");
const day = (v) => (v ? String(v).slice(0, 10) : "–");

// Backtest columns: [field, heading, format, which way is better (for the bold best value)].
const BACKTEST_COLUMNS = [
  ["total_return", "Total return", pct, "max"],
  ["sharpe", "Sharpe", (v) => fixed(v, 2), "max"],
  ["sortino", "Sortino", (v) => fixed(v, 2), "max"],
  ["max_drawdown", "Max drawdown", pct, "max"],
  ["exposure", "Exposure", pct, null],
  ["turnover", "Turnover / yr", (v) => fixed(v, 1), null],
  ["trades", "Trades", (v) => (v ?? "–"), null],
];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function table(headers, rows, bestColumns = {}) {
  const thead = el("thead", {}, el("tr", {}, ...headers.map((h, i) => el("th", { class: i ? "num" : "" }, h))));
  const best = {};
  for (const [col, direction] of Object.entries(bestColumns)) {
    const values = rows.map((r) => Number(r.values[col])).filter(Number.isFinite);
    if (values.length) best[col] = direction === "max" ? Math.max(...values) : Math.min(...values);
  }
  const tbody = el("tbody", {}, ...rows.map((r) => el("tr", r.attrs || {},
    el("td", {}, r.label),
    ...r.cells.map((c, i) => el("td", {
      class: `num ${Number(r.values[i]) === best[i] ? "best" : ""}`, ...(r.fields ? { "data-field": r.fields[i] } : {}),
    }, c)))));
  return el("table", {}, thead, tbody);
}

function evaluationTable(metrics) {
  const overall = (metrics.evaluation || {}).metrics || {};
  const rows = Object.entries(overall).map(([name, m]) => ({
    label: STRATEGY_LABELS[name] || name,
    values: [m.accuracy, m.balanced_accuracy, m.macro_f1],
    cells: [pct(m.accuracy), pct(m.balanced_accuracy), fixed(m.macro_f1)],
  }));
  if (!rows.length) return el("p", { class: "muted" }, "No evaluation metrics stored.");
  return table(["Out-of-sample", "Accuracy", "Balanced accuracy", "Macro F1"], rows, { 0: "max", 1: "max", 2: "max" });
}

// The strategies of one side: the training's own side under `strategies`, both under `by_side`.
function sideStrategies(backtest, side) {
  const bySide = backtest.by_side || {};
  return bySide[side] || (side === backtest.side ? backtest.strategies : null) || {};
}

function backtestTable(backtest, side) {
  const strategies = sideStrategies(backtest, side);
  const best = {};
  BACKTEST_COLUMNS.forEach(([, , , direction], i) => { if (direction) best[i] = direction; });
  const rows = Object.entries(strategies).map(([name, s]) => ({
    label: STRATEGY_LABELS[name] || name,
    attrs: { "data-strategy": name },
    fields: BACKTEST_COLUMNS.map(([field]) => field),
    values: BACKTEST_COLUMNS.map(([field]) => s[field]),
    cells: BACKTEST_COLUMNS.map(([field, , format]) => format(s[field])),
  }));
  if (!rows.length) return el("p", { class: "muted" }, "No backtest stored.");
  const result = table(["Strategy", ...BACKTEST_COLUMNS.map(([, heading]) => heading)], rows, best);
  result.id = "backtest-table";
  result.dataset.side = side;
  return result;
}

function backtestSection(metrics) {
  const backtest = metrics.backtest || {};
  const sides = Object.keys(backtest.by_side || {});
  const section = el("div", { class: "backtest" }, el("h3", {}, "Backtest after costs"));
  let current = backtest.side || sides[0] || "long_flat";
  const holder = el("div", {}, backtestTable(backtest, current));
  if (sides.length > 1) {
    const buttons = sides.map((side) => el("button", { type: "button", "data-side": side }, SIDE_LABELS[side] || side));
    const mark = () => buttons.forEach((b) => b.classList.toggle("active", b.dataset.side === current));
    for (const button of buttons) {
      button.addEventListener("click", () => {
        current = button.dataset.side;
        holder.replaceChildren(backtestTable(backtest, current));
        mark();
      });
    }
    mark();
    section.append(el("div", { class: "sides", role: "group", "aria-label": "what a sell signal does" }, ...buttons));
  }
  section.append(holder);
  if (backtest.rules) section.append(el("p", { class: "muted backtest-rules" }, `How it trades: ${backtest.rules}.`));
  return section;
}

function gateVerdict(metrics) {
  const gate = metrics.gate;
  const activation = metrics.activation || {};
  if (!gate) return "not recorded";
  const forced = activation.forced ? " (activated by --force)" : "";
  return `${gate.passed ? "passed" : gate.verdict}${forced}`;
}

function gateTable(metrics) {
  const criteria = (metrics.gate || {}).criteria || [];
  if (!criteria.length) return el("p", { class: "muted" }, "No gate verdict stored.");
  const rows = criteria.map((c) => ({
    label: c.criterion,
    values: [],
    cells: [fixed(c.model, 4), fixed(c.baseline_value, 4), fixed(c.lower_bound, 4), c.passed ? "pass" : "fail"],
  }));
  return table(["Gate criterion", "Model", "Baseline", "Lower bound", "Verdict"], rows);
}

function modelReport(model) {
  const body = document.getElementById("model-report-body");
  const title = document.getElementById("report-model");
  body.classList.remove("muted");
  if (!model) {
    body.classList.add("muted");
    title.textContent = "";
    body.textContent = "No model is registered: signals come from the rule engine. Train one with `stocktrack train`.";
    return;
  }
  title.textContent = `· ${model.id}${model.active ? " (active)" : ""}`;
  const metrics = model.metrics || {};
  const backtest = metrics.backtest || {};
  const facts = el("dl", { class: "facts" },
    el("dt", {}, "Model"), el("dd", {}, model.id),
    el("dt", {}, "Algorithm"), el("dd", {}, model.algorithm),
    el("dt", {}, "Trained on"), el("dd", {}, `${day(model.train_from)} → ${day(model.train_to)}`),
    el("dt", {}, "Registered"), el("dd", {}, new Date(model.created_at).toLocaleString()),
    el("dt", {}, "Active"), el("dd", {}, model.active ? "yes" : "no"),
    el("dt", {}, "Out-of-sample rows"), el("dd", {}, (metrics.evaluation || {}).n_out_of_sample ?? "–"),
    el("dt", {}, "Backtest period"), el("dd", {}, `${day(backtest.from)} → ${day(backtest.to)}` +
      (backtest.cost_bps !== undefined
        ? `, fills at ${String(backtest.execution).replace("next_", "next bar's ")}, ` +
          `${backtest.cost_bps} bps + ${backtest.slippage_bps} bps slippage per unit traded`
        : "")),
    el("dt", {}, "Gate"), el("dd", {}, gateVerdict(metrics)));
  const grid = el("div", { class: "metrics-grid" },
    el("div", {}, el("h3", {}, "Evaluation vs baselines"), evaluationTable(metrics)),
    el("div", {}, el("h3", {}, "Activation gate"), gateTable(metrics)));
  body.replaceChildren(facts, backtestSection(metrics), grid);
  if (model.has_equity_chart) {
    body.append(el("div", { class: "equity" }, el("h3", {}, "Equity curves"),
      el("img", { src: `/v1/models/${encodeURIComponent(model.id)}/equity.png`, alt: "out-of-sample equity curves" })));
  }
  body.dataset.model = model.id;
}

function modelsTable(models, onSelect) {
  const tbody = document.querySelector("#models-table tbody");
  tbody.replaceChildren(...models.map((m) => {
    const metrics = m.metrics || {};
    const overall = (metrics.evaluation || {}).metrics || {};
    const strategies = (metrics.backtest || {}).strategies || {};
    const model = strategies.model || {};
    const gate = metrics.gate;
    const row = el("tr", { "data-model": m.id, tabindex: "0" },
      el("td", {}, m.id), el("td", {}, new Date(m.created_at).toLocaleString()), el("td", {}, m.algorithm),
      el("td", {}, `${day(m.train_from)} → ${day(m.train_to)}`),
      el("td", { class: "num" }, pct((overall.model || {}).balanced_accuracy)),
      el("td", { class: "num" }, pct((overall.rules || {}).balanced_accuracy)),
      el("td", { class: "num", "data-field": "total_return" }, pct(model.total_return)),
      el("td", { class: "num", "data-field": "sharpe" }, fixed(model.sharpe, 2)),
      el("td", { class: "num" }, fixed((strategies.buy_and_hold || {}).sharpe, 2)),
      el("td", {}, gate ? (gate.passed ? "passed" : "refused") : "–"),
      el("td", {}, m.active ? el("span", { class: "badge active" }, "active") : ""));
    row.addEventListener("click", () => onSelect(m.id));
    row.addEventListener("keydown", (event) => { if (event.key === "Enter") onSelect(m.id); });
    return row;
  }));
  if (!models.length) tbody.append(el("tr", {}, el("td", { colspan: "11", class: "muted" }, "No models registered.")));
}

function scorecardTable(lines) {
  const tbody = document.querySelector("#scorecard-table tbody");
  tbody.replaceChildren(...lines.map((l) => {
    const promise = l.out_of_sample || {};
    return el("tr", { "data-source": l.source, "data-symbol": l.symbol },
      el("td", {}, l.source), el("td", {}, l.symbol), el("td", {}, l.interval),
      el("td", { class: "num" }, l.scored), el("td", { class: "num" }, l.pending),
      el("td", { class: "num" }, pct(l.hit_rate)),
      el("td", { class: "num" }, pct(l.avg_forward_return_buy)),
      el("td", { class: "num" }, pct(l.avg_forward_return_sell)),
      el("td", { class: "num" }, pct(promise.balanced_accuracy)),
      el("td", { class: "num" }, fixed(promise.backtest_sharpe, 2)));
  }));
  if (!lines.length) tbody.append(el("tr", {}, el("td", { colspan: "10", class: "muted" }, "No scored signals yet.")));
}

const requestedModel = () => new URLSearchParams(window.location.hash.slice(1)).get("model");

function show(models) {
  const wanted = requestedModel();
  const model = models.find((m) => m.id === wanted) || models.find((m) => m.active) || models[0] || null;
  modelReport(model);
  for (const row of document.querySelectorAll("#models-table tbody tr[data-model]")) {
    row.classList.toggle("selected", model !== null && row.dataset.model === model.id);
  }
}

async function start() {
  const [data, scorecard] = await Promise.all([getJson("/v1/models"), getJson("/v1/scorecard")]);
  modelsTable(data.items, (id) => { window.location.hash = `model=${encodeURIComponent(id)}`; });
  window.addEventListener("hashchange", () => show(data.items));
  show(data.items);
  scorecardTable(scorecard.items);
  document.body.dataset.ready = "true";
}

start().catch((error) => {
  document.getElementById("model-report-body").textContent = `Could not load models: ${error.message}`;
  document.body.dataset.ready = "error";
});
