// The watch list page: wires the watch list, the chart, the signal list and the live feed
// together. Every load retries with backoff (see api.js) and the page says what it is waiting
// for, so a refused or failed request at start (a 429, an api restarting) delays the page
// instead of killing it.
import { HttpError, Superseded, formatPrice, getJson, loadConfig, withRetry } from "./api.js";
import { SymbolChart } from "./chart.js";
import { LiveFeed } from "./live.js";
import { SymbolForm } from "./symbol_form.js";
import { Clock } from "./timezone.js";
import { WatchList } from "./watchlist.js";

const WATCHLIST_REFRESH_MS = 60_000;
const byId = (id) => document.getElementById(id);

const clock = new Clock();
const statusEl = byId("load-status");
const chartTitle = byId("chart-title");
const chartLast = byId("chart-last");
const readoutFields = {};
for (const el of document.querySelectorAll(".chart-panel [data-field]")) readoutFields[el.dataset.field] = el;
const chart = new SymbolChart(
  {
    price: byId("price-chart"), rsi: byId("rsi-chart"), macd: byId("macd-chart"), message: byId("chart-message"),
    readout: { root: byId("readout"), fields: readoutFields }, axisLabel: byId("time-axis-label"),
    signalList: byId("signal-list"), tooltip: byId("signal-tip"),
  },
  clock,
);
let feed = null;
let refreshTimer = null;

function say(text, state = "") {
  statusEl.textContent = text;
  statusEl.dataset.state = state;
  statusEl.hidden = !text;
}

const waiting = (what) => (error, wait) => say(`${what} failed (${error.message}); retrying in ${Math.ceil(wait / 1000)} s…`, "retrying");

function select(symbol) {
  watchlist.select(symbol);
  chartTitle.textContent = symbol;
  const row = watchlist.rows.get(symbol);
  chartLast.textContent = row && row.last !== null ? formatPrice(row.last) : "";
  const url = new URL(window.location.href);
  url.searchParams.set("symbol", symbol);
  window.history.replaceState(null, "", url);
  chart.show(symbol);
}

const watchlist = new WatchList(byId("watchlist"), byId("watchlist-empty"), select);
const symbolForm = new SymbolForm(
  { form: byId("symbol-form"), input: byId("symbol-input"), keyForm: byId("key-form"), keyInput: byId("key-input"), message: byId("symbol-message") },
  watchlist,
  (symbol, added) => {
    if (!added) {
      select(symbol);
      return;
    }
    withRetry(refresh, waiting("Loading the watch list"))
      .then(() => {
        say("");
        select(symbol);
      })
      .catch((error) => say(`Could not reload the watch list: ${error.message}`, "error"));
  },
  () => {
    if (document.body.dataset.ready !== "true") start();
  },
);

const zoneButton = byId("tz-toggle");
const showZone = () => {
  zoneButton.textContent = clock.useUtc ? "UTC" : "Local time";
  zoneButton.title = clock.useUtc ? "showing UTC; switch to your time zone" : `showing ${clock.zone}; switch to UTC`;
  zoneButton.dataset.zone = clock.zone;
};
zoneButton.addEventListener("click", () => clock.toggle());
clock.onChange(showZone);
showZone();

const buttons = [...document.querySelectorAll(".intervals button")];
for (const button of buttons) {
  button.addEventListener("click", () => {
    for (const b of buttons) b.classList.toggle("active", b === button);
    if (chart.symbol) chart.show(chart.symbol, button.dataset.interval);
    else chart.interval = button.dataset.interval;
  });
}

async function refresh() {
  const data = await getJson("/v1/dashboard/watchlist");
  const known = watchlist.symbols().join(",");
  if (data.items.map((i) => i.symbol).join(",") !== known) {
    watchlist.load(data.items);
    if (chart.symbol) watchlist.select(chart.symbol);
  }
  if (feed) feed.subscribe(watchlist.symbols());
  return data.items;
}

async function refreshQuietly() {
  try {
    await refresh();
    if (statusEl.dataset.state === "stale") say("");
  } catch (error) {
    const at = clock.format(Date.now() / 1000, { hour: "2-digit", minute: "2-digit" });
    say(`Watch list refresh failed (${error.message}) at ${at}; prices still update live.`, "stale");
  }
}

async function start() {
  document.body.dataset.ready = "loading";
  try {
    const config = await withRetry(loadConfig, waiting("Loading the page configuration"));
    if (!feed) {
      feed = new LiveFeed(config.streamUrl, byId("live-status"), {
        tick: (t) => {
          watchlist.update(t.symbol, t.price, t.ts);
          if (t.symbol === chart.symbol) chartLast.textContent = formatPrice(t.price);
          if (chart.onTick(t.symbol, t.price, t.ts, t.size)) chart.refreshIndicators();
        },
        signal: (s) => chart.onSignal(s),
      });
    }
    const items = await withRetry(refresh, waiting("Loading the watch list"));
    say("");
    window.clearInterval(refreshTimer);
    refreshTimer = window.setInterval(refreshQuietly, WATCHLIST_REFRESH_MS);
    const wanted = new URL(window.location.href).searchParams.get("symbol");
    const first = items.find((i) => i.symbol === wanted) || items[0];
    if (first) select(first.symbol);
    document.body.dataset.ready = "true";
  } catch (error) {
    if (error instanceof Superseded) return;
    document.body.dataset.ready = "error";
    if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
      say(`The api refused to load the watch list (${error.message}).`, "error");
      symbolForm.askForKey("Reading needs an API key with the read scope: enter one to continue.");
    } else {
      say(`Dashboard could not start: ${error.message}. Reload the page to try again.`, "error");
    }
  }
}

start();
