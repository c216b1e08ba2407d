// The watch list: last price, change against the reference (previous close), sparkline.
import { formatChange, formatPrice } from "./api.js";
import { renderSparkline } from "./sparkline.js";

const SPARK_POINTS = 120;

export class WatchList {
  constructor(table, emptyNote, onSelect) {
    this.body = table.querySelector("tbody");
    this.emptyNote = emptyNote;
    this.onSelect = onSelect;
    this.rows = new Map();
  }

  symbols() {
    return [...this.rows.keys()];
  }

  load(items) {
    this.body.replaceChildren();
    this.rows.clear();
    for (const item of items) this.addRow(item);
    this.emptyNote.hidden = items.length > 0;
  }

  addRow(item) {
    const tr = document.createElement("tr");
    tr.dataset.symbol = item.symbol;
    tr.innerHTML = `<td class="symbol"></td><td class="num price"></td><td class="num change"></td>
      <td><svg class="sparkline" aria-hidden="true"></svg></td>`;
    tr.querySelector(".symbol").textContent = item.symbol;
    if (item.name) tr.title = item.name;
    tr.addEventListener("click", () => this.onSelect(item.symbol));
    this.body.appendChild(tr);
    const row = { tr, reference: item.reference_price, spark: [...(item.sparkline || [])], last: null, lastTs: 0 };
    this.rows.set(item.symbol, row);
    if (item.last) this.update(item.symbol, item.last.price, item.last.ts, false);
    else renderSparkline(tr.querySelector("svg"), row.spark);
  }

  // Show only the rows whose symbol or name contains `text` (the search box).
  filter(text) {
    for (const [name, row] of this.rows) {
      const title = (row.tr.title || "").toUpperCase();
      row.tr.hidden = Boolean(text) && !name.includes(text) && !title.includes(text);
    }
  }

  select(symbol) {
    for (const [name, row] of this.rows) row.tr.classList.toggle("selected", name === symbol);
  }

  update(symbol, price, ts, flash = true) {
    const row = this.rows.get(symbol);
    if (!row || Number(ts) < row.lastTs) return;
    const previous = row.last;
    row.last = Number(price);
    row.lastTs = Number(ts);
    if (row.reference == null) row.reference = row.last;
    const cell = row.tr.querySelector(".price");
    cell.textContent = formatPrice(price);
    cell.dataset.ts = String(ts);
    const change = formatChange(price, row.reference);
    const changeCell = row.tr.querySelector(".change");
    changeCell.textContent = change.text;
    changeCell.className = `num change ${change.sign > 0 ? "up" : change.sign < 0 ? "down" : ""}`;
    if (flash && previous !== null && previous !== row.last) {
      cell.classList.remove("flash-up", "flash-down");
      void cell.offsetWidth; // restart the animation
      cell.classList.add(row.last > previous ? "flash-up" : "flash-down");
    }
    this.pushSpark(row, row.last, Number(ts));
  }

  pushSpark(row, price, ts) {
    // One point per minute: a tick in the same minute replaces the last point.
    const minute = Math.floor(ts / 60000);
    if (row.sparkMinute === minute && row.spark.length) row.spark[row.spark.length - 1] = price;
    else row.spark.push(price);
    row.sparkMinute = minute;
    if (row.spark.length > SPARK_POINTS) row.spark.splice(0, row.spark.length - SPARK_POINTS);
    renderSparkline(row.tr.querySelector("svg"), row.spark);
  }
}
