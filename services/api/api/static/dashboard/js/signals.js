// Signals on the chart and beside it: one marker per bar and action (several signals in a bar
// share it, so markers never stack into unreadable text), their reasons and confidence in a
// tooltip when the pointer is on that bar, and the list of the interval's signals, newest first.
import { seconds } from "./api.js";

const LIST_SIZE = 60;

// The bar interval a signal was made on. Signals name it in an `interval` field (older rows in
// their reasons); one that names none came from the 1-minute rule engine.
export function signalInterval(signal) {
  return signal.interval || (signal.reasons && signal.reasons.interval) || "1m";
}

// A short sentence for each reason: the rules that fired, or a model's verdict.
export function reasonLines(signal) {
  const reasons = signal.reasons || {};
  const lines = [];
  if (Array.isArray(reasons.rules)) {
    for (const rule of reasons.rules) {
      if (typeof rule === "string") lines.push(rule);
      else if (rule && (rule.detail || rule.rule)) lines.push(rule.detail || rule.rule);
    }
  } else if (typeof reasons.rule === "string") {
    lines.push(reasons.rule);
  }
  if (reasons.model_id) lines.push(`model ${reasons.model_id}`);
  if (reasons.probabilities && typeof reasons.probabilities === "object") {
    const probs = Object.entries(reasons.probabilities).map(([k, v]) => `${k} ${(Number(v) * 100).toFixed(0)}%`);
    if (probs.length) lines.push(probs.join(" · "));
  }
  if (!lines.length) lines.push("no reasons recorded");
  return lines;
}

const percent = (v) => `${(Number(v) * 100).toFixed(0)}%`;

export class SignalView {
  constructor(series, listEl, tooltipEl, clock, onPick) {
    this.series = series;
    this.listEl = listEl;
    this.tooltipEl = tooltipEl;
    this.clock = clock;
    this.onPick = onPick;
    this.items = [];
    this.interval = "1m";
    this.bucket = (t) => t;
  }

  set(signals, interval, bucket) {
    this.interval = interval;
    this.bucket = bucket;
    this.items = signals
      .filter((s) => s.action !== "hold" && signalInterval(s) === interval)
      .sort((a, b) => a.ts - b.ts);
    this.render();
  }

  add(signal) {
    if (signal.action === "hold") return;
    if (this.items.some((s) => s.ts === signal.ts && s.source === signal.source && s.action === signal.action)) return;
    this.items.push(signal);
    this.items.sort((a, b) => a.ts - b.ts);
    this.render();
  }

  note(text) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = text;
    this.listEl.replaceChildren(li);
  }

  atTime(time) {
    return this.items.filter((s) => this.bucket(seconds(s.ts)) === time);
  }

  render() {
    const groups = new Map();
    for (const s of this.items) {
      const key = `${this.bucket(seconds(s.ts))}:${s.action}`;
      groups.set(key, [...(groups.get(key) || []), s]);
    }
    const markers = [...groups.entries()].map(([id, group]) => {
      const buy = group[0].action === "buy";
      return {
        id,
        time: this.bucket(seconds(group[0].ts)),
        position: buy ? "belowBar" : "aboveBar",
        color: buy ? "#26a69a" : "#ef5350",
        shape: buy ? "arrowUp" : "arrowDown",
        text: group.length > 1 ? `×${group.length}` : "",
      };
    });
    markers.sort((a, b) => a.time - b.time);
    this.series.setMarkers(markers);
    this.listEl.dataset.count = String(this.items.length);
    this.listEl.dataset.markers = String(markers.length);
    this.renderList();
  }

  renderList() {
    const newest = this.items.slice(-LIST_SIZE).reverse();
    if (!newest.length) {
      this.note(`No buy or sell signals on the ${this.interval} chart in this range.`);
      return;
    }
    this.listEl.replaceChildren(...newest.map((s) => this.listItem(s)));
  }

  listItem(signal) {
    const li = document.createElement("li");
    li.className = `signal ${signal.action}`;
    li.tabIndex = 0;
    const head = document.createElement("div");
    head.className = "signal-head";
    const action = document.createElement("span");
    action.className = `action ${signal.action === "buy" ? "up" : "down"}`;
    action.textContent = signal.action === "buy" ? "▲ buy" : "▼ sell";
    const confidence = document.createElement("span");
    confidence.className = "confidence";
    confidence.textContent = percent(signal.confidence);
    const when = document.createElement("span");
    when.className = "muted when";
    when.textContent = this.clock.dateTime(seconds(signal.ts), this.interval === "1d");
    head.append(action, confidence, when);
    const why = document.createElement("div");
    why.className = "muted why";
    why.textContent = `${signal.source}: ${reasonLines(signal).join("; ")}`;
    li.append(head, why);
    const pick = () => this.onPick(this.bucket(seconds(signal.ts)));
    li.addEventListener("click", pick);
    li.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(); });
    return li;
  }

  // The tooltip over the price chart when the hovered bar carries signals.
  hover(time, point, chartEl) {
    const here = time === null || !point ? [] : this.atTime(time);
    const tip = this.tooltipEl;
    if (!here.length) {
      tip.hidden = true;
      return;
    }
    tip.replaceChildren(...here.map((s) => {
      const block = document.createElement("div");
      block.className = "tip-signal";
      const title = document.createElement("strong");
      title.className = s.action === "buy" ? "up" : "down";
      title.textContent = `${s.action.toUpperCase()} · ${percent(s.confidence)} confidence`;
      const source = document.createElement("div");
      source.className = "muted";
      source.textContent = `${s.source} · ${this.clock.dateTime(seconds(s.ts), this.interval === "1d")}`;
      const list = document.createElement("ul");
      for (const line of reasonLines(s)) {
        const li = document.createElement("li");
        li.textContent = line;
        list.append(li);
      }
      block.append(title, source, list);
      return block;
    }));
    tip.hidden = false;
    const width = chartEl.clientWidth;
    const left = point.x + 16 + tip.offsetWidth > width ? point.x - 16 - tip.offsetWidth : point.x + 16;
    tip.style.left = `${Math.max(0, left)}px`;
    tip.style.top = `${Math.max(0, point.y - 20)}px`;
  }
}
