// The model page: the active model's evaluation against its baselines, and every registered model.
import { getJson } from "./api.js";

const STRATEGY_LABELS = {
  model: "Model", always_hold: "Always hold", majority: "Majority class", rules: "Rule engine", buy_and_hold: "Buy and hold",
};
const pct = (v) => (Number.isFinite(Number(v)) ? `${(Number(v) * 100).toFixed(1)}%` : "–");
const fixed = (v, d = 3) => (Number.isFinite(Number(v)) ? Number(v).toFixed(d) : "–");
const day = (v) => (v ? String(v).slice(0, 10) : "–");

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
  const tbody = el("tbody", {}, ...rows.map((r) => el("tr", {},
    el("td", {}, r.label),
    ...r.cells.map((c, i) => el("td", { class: `num ${Number(r.values[i]) === best[i] ? "best" : ""}` }, c)))));
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

function backtestTable(metrics) {
  const strategies = (metrics.backtest || {}).strategies || {};
  const rows = Object.entries(strategies).map(([name, s]) => ({
    label: STRATEGY_LABELS[name] || name,
    values: [s.total_return, s.sharpe, s.max_drawdown, s.trades],
    cells: [pct(s.total_return), fixed(s.sharpe, 2), pct(s.max_drawdown), s.trades ?? "–"],
  }));
  if (!rows.length) return el("p", { class: "muted" }, "No backtest stored.");
  return table(["Backtest", "Total return", "Sharpe", "Max drawdown", "Trades"], rows, { 0: "max", 1: "max", 2: "max" });
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

function activeModel(model) {
  const body = document.getElementById("active-model-body");
  body.classList.remove("muted");
  if (!model) {
    body.classList.add("muted");
    body.textContent = "No model is active: signals come from the rule engine. Train one with `stocktrack train`.";
    return;
  }
  const metrics = model.metrics || {};
  const backtest = metrics.backtest || {};
  const facts = el("dl", { class: "facts" },
    el("dt", {}, "Model"), el("dd", {}, model.id),
    el("dt", {}, "Algorithm"), el("dd", {}, model.algorithm),
    el("dt", {}, "Trained on"), el("dd", {}, `${day(model.train_from)} → ${day(model.train_to)}`),
    el("dt", {}, "Registered"), el("dd", {}, new Date(model.created_at).toLocaleString()),
    el("dt", {}, "Out-of-sample rows"), el("dd", {}, (metrics.evaluation || {}).n_out_of_sample ?? "–"),
    el("dt", {}, "Backtest period"), el("dd", {}, `${day(backtest.from)} → ${day(backtest.to)}` +
      (backtest.cost_bps !== undefined
        ? `, ${backtest.side}, fills at ${String(backtest.execution).replace("next_", "next bar's ")}, ` +
          `${backtest.cost_bps} bps + ${backtest.slippage_bps} bps slippage per unit traded`
        : "")),
    el("dt", {}, "Gate"), el("dd", {}, gateVerdict(metrics)));
  const grid = el("div", { class: "metrics-grid" },
    el("div", {}, el("h3", {}, "Evaluation vs baselines"), evaluationTable(metrics)),
    el("div", {}, el("h3", {}, "Backtest"), backtestTable(metrics)),
    el("div", {}, el("h3", {}, "Activation gate"), gateTable(metrics)));
  body.replaceChildren(facts, grid);
  if (model.has_equity_chart) {
    body.append(el("div", { class: "equity" }, el("h3", {}, "Equity curves"),
      el("img", { src: `/v1/models/${encodeURIComponent(model.id)}/equity.png`, alt: "out-of-sample equity curves" })));
  }
}

function modelsTable(models) {
  const tbody = document.querySelector("#models-table tbody");
  tbody.replaceChildren(...models.map((m) => {
    const overall = ((m.metrics || {}).evaluation || {}).metrics || {};
    return el("tr", { "data-model": m.id },
      el("td", {}, m.id), el("td", {}, new Date(m.created_at).toLocaleString()), el("td", {}, m.algorithm),
      el("td", {}, `${day(m.train_from)} → ${day(m.train_to)}`),
      el("td", { class: "num" }, pct((overall.model || {}).balanced_accuracy)),
      el("td", { class: "num" }, pct((overall.rules || {}).balanced_accuracy)),
      el("td", {}, m.active ? el("span", { class: "badge active" }, "active") : ""));
  }));
  if (!models.length) tbody.append(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "No models registered.")));
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

async function start() {
  const [data, scorecard] = await Promise.all([getJson("/v1/models"), getJson("/v1/scorecard")]);
  activeModel(data.items.find((m) => m.active) || null);
  modelsTable(data.items);
  scorecardTable(scorecard.items);
  document.body.dataset.ready = "true";
}

start().catch((error) => {
  document.getElementById("active-model-body").textContent = `Could not load models: ${error.message}`;
  document.body.dataset.ready = "error";
});
