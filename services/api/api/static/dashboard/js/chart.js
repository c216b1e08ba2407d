// The symbol chart: candles with SMA/EMA overlays and signal markers, plus RSI and MACD panes.
// Three lightweight-charts instances share one visible range, so the panes scroll together.
import { getJson, seconds } from "./api.js";

const LC = window.LightweightCharts;
const INTERVAL_SECONDS = { "1m": 60, "5m": 300, "1h": 3600, "1d": 86400 };
const VISIBLE_BARS = 150;
const BAR_LIMIT = { "1m": 600, "5m": 600, "1h": 600, "1d": 1000 };
const THEME = {
  layout: { background: { type: "solid", color: "#161c23" }, textColor: "#c3cad6" },
  grid: { vertLines: { color: "#1f2730" }, horzLines: { color: "#1f2730" } },
  rightPriceScale: { borderColor: "#263040", minimumWidth: 72 },
  timeScale: { borderColor: "#263040", timeVisible: true, secondsVisible: false },
  crosshair: { mode: LC.CrosshairMode.Normal },
};
const num = (v) => (v === null || v === undefined ? null : Number(v));

export class SymbolChart {
  constructor(priceEl, rsiEl, macdEl, messageEl) {
    this.priceEl = priceEl;
    this.messageEl = messageEl;
    this.symbol = null;
    this.interval = "1m";
    this.candles = [];
    this.markers = [];
    this.loadToken = 0;
    this.price = LC.createChart(priceEl, { ...THEME, autoSize: true });
    this.candleSeries = this.price.addCandlestickSeries({
      upColor: "#26a69a", downColor: "#ef5350", borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350",
    });
    const overlay = { lineWidth: 1.5, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false };
    this.sma50 = this.price.addLineSeries({ ...overlay, color: "#f5a623" });
    this.sma200 = this.price.addLineSeries({ ...overlay, color: "#b36bff" });
    this.ema = this.price.addLineSeries({ ...overlay, color: "#4fc3f7" });

    this.rsiChart = LC.createChart(rsiEl, { ...THEME, autoSize: true });
    this.rsi = this.rsiChart.addLineSeries({ color: "#e0b04c", lineWidth: 1.5, priceLineVisible: false });
    for (const level of [30, 70]) {
      this.rsi.createPriceLine({ price: level, color: "#55606f", lineWidth: 1, lineStyle: LC.LineStyle.Dashed, axisLabelVisible: true });
    }
    this.macdChart = LC.createChart(macdEl, { ...THEME, autoSize: true });
    this.macdHist = this.macdChart.addHistogramSeries({ priceLineVisible: false, lastValueVisible: false });
    this.macdLine = this.macdChart.addLineSeries({ color: "#4fc3f7", lineWidth: 1.5, priceLineVisible: false });
    this.macdSignal = this.macdChart.addLineSeries({ color: "#f5a623", lineWidth: 1.5, priceLineVisible: false });
    this.syncTimeScales([this.price, this.rsiChart, this.macdChart]);
  }

  syncTimeScales(charts) {
    let syncing = false;
    for (const source of charts) {
      source.timeScale().subscribeVisibleLogicalRangeChange((range) => {
        if (syncing || range === null) return;
        syncing = true;
        for (const other of charts) if (other !== source) other.timeScale().setVisibleLogicalRange(range);
        syncing = false;
      });
    }
  }

  bucket(tsSeconds) {
    const width = INTERVAL_SECONDS[this.interval];
    return tsSeconds - (tsSeconds % width);
  }

  async show(symbol, interval = this.interval) {
    this.symbol = symbol;
    this.interval = interval;
    const token = ++this.loadToken;
    this.priceEl.dataset.interval = interval;
    this.priceEl.dataset.loading = "true";
    const path = encodeURIComponent(symbol);
    const base = `interval=${interval}&limit=${BAR_LIMIT[interval]}`;
    try {
      const [bars, fast, slow] = await Promise.all([
        getJson(`/v1/bars/${path}?${base}`),
        getJson(`/v1/indicators/${path}?${base}&sma_period=50&ema_period=20`),
        getJson(`/v1/indicators/${path}?${base}&sma_period=200`),
      ]);
      if (token !== this.loadToken) return;
      this.setBars(bars.items);
      this.setIndicators(fast.items, slow.items);
      this.showRecent();
      await this.loadSignals(token);
      this.messageEl.textContent = bars.items.length ? "" : "No bars yet for this interval.";
    } catch (error) {
      if (token !== this.loadToken) return;
      this.setBars([]);
      this.setIndicators([], []);
      this.messageEl.textContent = `Could not load ${symbol}: ${error.message}`;
    } finally {
      if (token === this.loadToken) this.priceEl.dataset.loading = "false";
    }
  }

  setBars(items) {
    this.candles = items.map((b) => ({
      time: seconds(b.ts), open: Number(b.open), high: Number(b.high), low: Number(b.low), close: Number(b.close),
    }));
    this.candleSeries.setData(this.candles);
    this.priceEl.dataset.bars = String(this.candles.length);
  }

  showRecent() {
    // The newest bars at a readable width; the panes follow through the range sync. Called after
    // every series has its data, since setting a pane's data would move the range again.
    const count = this.candles.length;
    this.price.timeScale().setVisibleLogicalRange({ from: Math.max(0, count - VISIBLE_BARS), to: count + 2 });
  }

  setIndicators(fast, slow) {
    const line = (items, field) => items.filter((p) => p[field] !== null).map((p) => ({ time: seconds(p.ts), value: num(p[field]) }));
    this.ema.setData(line(fast, "ema"));
    this.sma50.setData(line(fast, "sma"));
    this.sma200.setData(line(slow, "sma"));
    // The panes get a point (or a gap) for every candle, so the three charts share logical indices
    // and their synchronised ranges line up bar for bar.
    const byTime = new Map(fast.map((p) => [seconds(p.ts), p]));
    const padded = (field, style = () => ({})) => this.candles.map(({ time }) => {
      const p = byTime.get(time);
      return p && p[field] !== null ? { time, value: num(p[field]), ...style(p) } : { time };
    });
    this.rsi.setData(padded("rsi"));
    this.macdLine.setData(padded("macd"));
    this.macdSignal.setData(padded("macd_signal"));
    this.macdHist.setData(padded("macd_hist", (p) => ({
      color: p.macd_hist >= 0 ? "rgba(38,166,154,.6)" : "rgba(239,83,80,.6)",
    })));
  }

  async loadSignals(token) {
    if (!this.candles.length) {
      this.setMarkers([]);
      return;
    }
    const from = this.candles[0].time * 1000;
    const path = `/v1/signals?symbol=${encodeURIComponent(this.symbol)}&from=${from}&limit=500`;
    const [buys, sells] = await Promise.all([getJson(`${path}&action=buy`), getJson(`${path}&action=sell`)]);
    if (token !== this.loadToken) return;
    this.setMarkers([...buys.items, ...sells.items]);
  }

  markerOf(signal) {
    const buy = signal.action === "buy";
    return {
      time: this.bucket(seconds(signal.ts)),
      position: buy ? "belowBar" : "aboveBar",
      color: buy ? "#26a69a" : "#ef5350",
      shape: buy ? "arrowUp" : "arrowDown",
      text: `${signal.action} ${signal.source}`,
    };
  }

  setMarkers(signals) {
    this.markers = signals.filter((s) => s.action !== "hold").map((s) => this.markerOf(s));
    this.markers.sort((a, b) => a.time - b.time);
    this.candleSeries.setMarkers(this.markers);
  }

  // Live updates ------------------------------------------------------------------------------

  onTick(symbol, price, tsMs) {
    if (symbol !== this.symbol || this.priceEl.dataset.loading === "true") return false;
    const value = Number(price);
    const time = this.bucket(seconds(tsMs));
    const last = this.candles[this.candles.length - 1];
    if (last && time < last.time) return false;
    let startedNew = false;
    if (last && last.time === time) {
      last.high = Math.max(last.high, value);
      last.low = Math.min(last.low, value);
      last.close = value;
      this.candleSeries.update(last);
    } else {
      const candle = { time, open: value, high: value, low: value, close: value };
      this.candles.push(candle);
      this.candleSeries.update(candle);
      for (const pane of [this.rsi, this.macdLine, this.macdSignal, this.macdHist]) pane.update({ time });
      this.priceEl.dataset.bars = String(this.candles.length);
      startedNew = true;
    }
    return startedNew;
  }

  onSignal(signal) {
    if (signal.symbol !== this.symbol || signal.action === "hold") return;
    this.markers.push(this.markerOf(signal));
    this.markers.sort((a, b) => a.time - b.time);
    this.candleSeries.setMarkers(this.markers);
  }

  async refreshIndicators() {
    if (!this.symbol) return;
    const token = this.loadToken;
    const path = encodeURIComponent(this.symbol);
    const base = `interval=${this.interval}&limit=${BAR_LIMIT[this.interval]}`;
    try {
      const [fast, slow] = await Promise.all([
        getJson(`/v1/indicators/${path}?${base}&sma_period=50&ema_period=20`),
        getJson(`/v1/indicators/${path}?${base}&sma_period=200`),
      ]);
      if (token === this.loadToken) this.setIndicators(fast.items, slow.items);
    } catch (_) { /* the next closed bar tries again */ }
  }
}
