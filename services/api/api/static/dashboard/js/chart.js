// The symbol chart: candles with SMA/EMA overlays, volume and signal markers, plus RSI and MACD
// panes. Three lightweight-charts instances share one visible range and one crosshair, so the
// panes scroll and point together; only the bottom pane draws the time axis.
import { Superseded, formatPrice, getJson, seconds, withRetry } from "./api.js";
import { SignalView, signalInterval } from "./signals.js";

const LC = window.LightweightCharts;
export const INTERVAL_SECONDS = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400 };
const VISIBLE_BARS = 150;
const BAR_LIMIT = { "1m": 600, "5m": 600, "15m": 600, "1h": 600, "1d": 1000 };
const UP = "#26a69a";
const DOWN = "#ef5350";
const THEME = {
  layout: { background: { type: "solid", color: "#161c23" }, textColor: "#c3cad6" },
  grid: { vertLines: { color: "#1f2730" }, horzLines: { color: "#1f2730" } },
  rightPriceScale: { borderColor: "#263040", minimumWidth: 72 },
  timeScale: { borderColor: "#263040", timeVisible: true, secondsVisible: false },
  crosshair: { mode: LC.CrosshairMode.Normal },
};
const PANE = { ...THEME, timeScale: { ...THEME.timeScale, visible: false }, layout: { ...THEME.layout, attributionLogo: false } };
const num = (v) => (v === null || v === undefined ? null : Number(v));
const fixed = (v, digits = 2) => (v === null || v === undefined || !Number.isFinite(Number(v)) ? "–" : Number(v).toFixed(digits));

export class SymbolChart {
  constructor(elements, clock) {
    this.priceEl = elements.price;
    this.messageEl = elements.message;
    this.readout = elements.readout;
    this.axisLabel = elements.axisLabel;
    this.clock = clock;
    this.symbol = null;
    this.interval = "1m";
    this.candles = [];
    this.candleByTime = new Map();
    this.fastByTime = new Map();
    this.slowByTime = new Map();
    this.loadToken = 0;

    this.price = LC.createChart(elements.price, { ...THEME, timeScale: { ...THEME.timeScale, visible: false }, autoSize: true });
    this.candleSeries = this.price.addCandlestickSeries({
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
    });
    // Candles keep the upper three quarters; volume sits in the bottom fifth on its own scale.
    this.candleSeries.priceScale().applyOptions({ scaleMargins: { top: 0.06, bottom: 0.24 } });
    this.volume = this.price.addHistogramSeries({
      priceScaleId: "volume", priceFormat: { type: "volume" }, priceLineVisible: false, lastValueVisible: false,
    });
    this.volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    const overlay = { lineWidth: 1.5, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false };
    this.sma50 = this.price.addLineSeries({ ...overlay, color: "#f5a623" });
    this.sma200 = this.price.addLineSeries({ ...overlay, color: "#b36bff" });
    this.ema = this.price.addLineSeries({ ...overlay, color: "#4fc3f7" });

    // RSI lives on 0..100 whatever the data, so the 30/70 guides never leave the pane; the
    // guides carry no axis labels (the pane label names them), which kept colliding with ticks.
    this.rsiChart = LC.createChart(elements.rsi, { ...PANE, autoSize: true });
    this.rsi = this.rsiChart.addLineSeries({
      color: "#e0b04c", lineWidth: 1.5, priceLineVisible: false, lastValueVisible: false,
      autoscaleInfoProvider: () => ({ priceRange: { minValue: 0, maxValue: 100 } }),
    });
    this.rsi.priceScale().applyOptions({ scaleMargins: { top: 0.06, bottom: 0.06 } });
    for (const level of [30, 70]) {
      this.rsi.createPriceLine({ price: level, color: "#55606f", lineWidth: 1, lineStyle: LC.LineStyle.Dashed, axisLabelVisible: false });
    }
    this.macdChart = LC.createChart(elements.macd, {
      ...THEME, layout: { ...THEME.layout, attributionLogo: false }, autoSize: true,
    });
    const quiet = { priceLineVisible: false, lastValueVisible: false };
    this.macdHist = this.macdChart.addHistogramSeries(quiet);
    this.macdLine = this.macdChart.addLineSeries({ ...quiet, color: "#4fc3f7", lineWidth: 1.5 });
    this.macdSignal = this.macdChart.addLineSeries({ ...quiet, color: "#f5a623", lineWidth: 1.5 });

    this.signals = new SignalView(this.candleSeries, elements.signalList, elements.tooltip, clock, (time) => this.reveal(time));
    this.charts = [this.price, this.rsiChart, this.macdChart];
    this.syncTimeScales();
    this.syncCrosshairs();
    this.applyClock();
    clock.onChange(() => {
      this.applyClock();
      this.signals.render();
      this.showReadout(null);
    });
  }

  get daily() {
    return this.interval === "1d";
  }

  applyClock() {
    const options = {
      localization: { timeFormatter: (time) => this.clock.dateTime(time, this.daily) },
      timeScale: { tickMarkFormatter: (time, type) => this.clock.tickMark(time, type, this.daily) },
    };
    for (const chart of this.charts) chart.applyOptions(options);
    this.axisLabel.textContent = this.daily ? "Date · daily bars by UTC calendar day" : `Time · ${this.clock.label()}`;
    this.axisLabel.dataset.zone = this.clock.zone;
  }

  syncTimeScales() {
    let syncing = false;
    for (const source of this.charts) {
      source.timeScale().subscribeVisibleLogicalRangeChange((range) => {
        if (syncing || range === null) return;
        syncing = true;
        for (const other of this.charts) if (other !== source) other.timeScale().setVisibleLogicalRange(range);
        syncing = false;
      });
    }
  }

  // One vertical line through all three panes, and one readout of everything at that bar.
  syncCrosshairs() {
    const anchors = [
      [this.price, this.candleSeries, (t) => this.candleByTime.get(t)?.close],
      [this.rsiChart, this.rsi, (t) => this.fastByTime.get(t)?.rsi],
      [this.macdChart, this.macdLine, (t) => this.fastByTime.get(t)?.macd],
    ];
    let syncing = false;
    for (const [source] of anchors) {
      source.subscribeCrosshairMove((param) => {
        if (syncing) return;
        syncing = true;
        const time = param.time ?? null;
        for (const [chart, series, valueAt] of anchors) {
          if (chart === source) continue;
          const value = time === null ? null : num(valueAt(time));
          if (value === null) chart.clearCrosshairPosition();
          else chart.setCrosshairPosition(value, time, series);
        }
        syncing = false;
        this.showReadout(time);
        this.signals.hover(source === this.price ? time : null, param.point, this.priceEl);
      });
    }
  }

  bucket(tsSeconds) {
    const width = INTERVAL_SECONDS[this.interval];
    return tsSeconds - (tsSeconds % width);
  }

  async show(symbol, interval = this.interval) {
    this.symbol = symbol;
    const intervalChanged = interval !== this.interval;
    this.interval = interval;
    if (intervalChanged) this.applyClock();
    const token = ++this.loadToken;
    this.priceEl.dataset.interval = interval;
    this.priceEl.dataset.loading = "true";
    this.messageEl.textContent = "";
    const path = encodeURIComponent(symbol);
    const base = `interval=${interval}&limit=${BAR_LIMIT[interval]}`;
    try {
      const [bars, fast, slow] = await withRetry(
        () => Promise.all([
          getJson(`/v1/bars/${path}?${base}`),
          getJson(`/v1/indicators/${path}?${base}&sma_period=50&ema_period=20`),
          getJson(`/v1/indicators/${path}?${base}&sma_period=200`),
        ]),
        (error, wait) => {
          this.messageEl.textContent = `Could not load ${symbol} (${error.message}); retrying in ${Math.ceil(wait / 1000)} s…`;
        },
        () => token === this.loadToken,
      );
      if (token !== this.loadToken) return;
      this.setBars(bars.items);
      this.setIndicators(fast.items, slow.items);
      this.showRecent();
      await this.loadSignals(token);
      this.messageEl.textContent = bars.items.length ? "" : "No bars yet for this interval.";
    } catch (error) {
      if (error instanceof Superseded || token !== this.loadToken) return;
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
      volume: Number(b.volume),
    }));
    this.candleByTime = new Map(this.candles.map((c) => [c.time, c]));
    this.candleSeries.setData(this.candles.map(({ volume, ...ohlc }) => ohlc));
    this.volume.setData(this.candles.map((c) => this.volumePoint(c)));
    this.priceEl.dataset.bars = String(this.candles.length);
    this.showReadout(null);
  }

  volumePoint(c) {
    return { time: c.time, value: c.volume || 0, color: c.close >= c.open ? "rgba(38,166,154,.45)" : "rgba(239,83,80,.45)" };
  }

  showRecent() {
    // The newest bars at a readable width; the panes follow through the range sync. Called after
    // every series has its data, since setting a pane's data would move the range again.
    const count = this.candles.length;
    this.setRange({ from: Math.max(0, count - VISIBLE_BARS), to: count + 2 });
  }

  // Every chart gets the range itself: a pane that has just had new data reports its range
  // later, and through the sync would otherwise hand the old interval's range back.
  setRange(range) {
    for (const chart of this.charts) chart.timeScale().setVisibleLogicalRange(range);
  }

  // Centre the chart on the bar at `time` (a click in the signal list).
  reveal(time) {
    const index = this.candles.findIndex((c) => c.time >= time);
    if (index < 0) return;
    const half = VISIBLE_BARS / 2;
    this.setRange({ from: index - half, to: index + half });
  }

  setIndicators(fast, slow) {
    const line = (items, field) => items.filter((p) => p[field] !== null).map((p) => ({ time: seconds(p.ts), value: num(p[field]) }));
    this.ema.setData(line(fast, "ema"));
    this.sma50.setData(line(fast, "sma"));
    this.sma200.setData(line(slow, "sma"));
    this.fastByTime = new Map(fast.map((p) => [seconds(p.ts), p]));
    this.slowByTime = new Map(slow.map((p) => [seconds(p.ts), p]));
    // The panes get a point (or a gap) for every candle, so the three charts share logical indices
    // and their synchronised ranges line up bar for bar.
    const padded = (field, style = () => ({})) => this.candles.map(({ time }) => {
      const p = this.fastByTime.get(time);
      return p && p[field] !== null ? { time, value: num(p[field]), ...style(p) } : { time };
    });
    this.rsi.setData(padded("rsi"));
    this.macdLine.setData(padded("macd"));
    this.macdSignal.setData(padded("macd_signal"));
    this.macdHist.setData(padded("macd_hist", (p) => ({
      color: p.macd_hist >= 0 ? "rgba(38,166,154,.6)" : "rgba(239,83,80,.6)",
    })));
    this.showReadout(null);
  }

  // The values at the hovered bar, or at the newest bar when the pointer is elsewhere.
  showReadout(time) {
    const hovered = time !== null && this.candleByTime.has(time);
    const candle = hovered ? this.candleByTime.get(time) : this.candles[this.candles.length - 1];
    const r = this.readout;
    r.root.dataset.hover = hovered ? "true" : "false";
    if (!candle) {
      for (const el of Object.values(r.fields)) el.textContent = "–";
      return;
    }
    const fast = this.fastByTime.get(candle.time) || {};
    const slow = this.slowByTime.get(candle.time) || {};
    const f = r.fields;
    f.time.textContent = this.clock.dateTime(candle.time, this.daily);
    f.time.dataset.ts = String(candle.time);
    f.open.textContent = formatPrice(candle.open);
    f.high.textContent = formatPrice(candle.high);
    f.low.textContent = formatPrice(candle.low);
    f.close.textContent = formatPrice(candle.close);
    f.close.className = candle.close >= candle.open ? "up" : "down";
    f.volume.textContent = Number.isFinite(candle.volume) ? candle.volume.toLocaleString() : "–";
    f.sma50.textContent = fixed(fast.sma);
    f.sma200.textContent = fixed(slow.sma);
    f.ema.textContent = fixed(fast.ema);
    f.rsi.textContent = fixed(fast.rsi, 1);
    f.macd.textContent = fixed(fast.macd, 3);
    f.macdSignal.textContent = fixed(fast.macd_signal, 3);
    f.macdHist.textContent = fixed(fast.macd_hist, 3);
  }

  async loadSignals(token) {
    if (!this.candles.length) {
      this.signals.set([], this.interval, (t) => this.bucket(t));
      return;
    }
    const from = this.candles[0].time * 1000;
    const path = `/v1/signals?symbol=${encodeURIComponent(this.symbol)}&from=${from}&limit=500`;
    try {
      const [buys, sells] = await Promise.all([getJson(`${path}&action=buy`), getJson(`${path}&action=sell`)]);
      if (token !== this.loadToken) return;
      this.signals.set([...buys.items, ...sells.items], this.interval, (t) => this.bucket(t));
    } catch (error) {
      if (token !== this.loadToken) return;
      this.signals.set([], this.interval, (t) => this.bucket(t));
      this.signals.note(`Signals unavailable: ${error.message}`);
    }
  }

  // Live updates ------------------------------------------------------------------------------

  onTick(symbol, price, tsMs, size) {
    if (symbol !== this.symbol || this.priceEl.dataset.loading === "true") return false;
    const value = Number(price);
    const traded = Number(size) || 0;
    const time = this.bucket(seconds(tsMs));
    const last = this.candles[this.candles.length - 1];
    if (last && time < last.time) return false;
    let startedNew = false;
    let candle = last;
    if (last && last.time === time) {
      last.high = Math.max(last.high, value);
      last.low = Math.min(last.low, value);
      last.close = value;
      last.volume += traded;
    } else {
      candle = { time, open: value, high: value, low: value, close: value, volume: traded };
      this.candles.push(candle);
      this.candleByTime.set(time, candle);
      for (const pane of [this.rsi, this.macdLine, this.macdSignal, this.macdHist]) pane.update({ time });
      this.priceEl.dataset.bars = String(this.candles.length);
      startedNew = true;
    }
    const { volume, ...ohlc } = candle;
    this.candleSeries.update(ohlc);
    this.volume.update(this.volumePoint(candle));
    if (this.readout.root.dataset.hover !== "true") this.showReadout(null);
    return startedNew;
  }

  onSignal(signal) {
    if (signal.symbol !== this.symbol || signalInterval(signal) !== this.interval) return;
    this.signals.add(signal);
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
