// The watch list page: wires the watch list, the chart and the live feed together.
import { formatPrice, getJson, loadConfig } from "./api.js";
import { SymbolChart } from "./chart.js";
import { LiveFeed } from "./live.js";
import { WatchList } from "./watchlist.js";

const WATCHLIST_REFRESH_MS = 60_000;

async function start() {
  const config = await loadConfig();
  const chartTitle = document.getElementById("chart-title");
  const chartLast = document.getElementById("chart-last");
  const chart = new SymbolChart(
    document.getElementById("price-chart"), document.getElementById("rsi-chart"),
    document.getElementById("macd-chart"), document.getElementById("chart-message"),
  );
  const buttons = [...document.querySelectorAll(".intervals button")];

  const select = (symbol) => {
    watchlist.select(symbol);
    chartTitle.textContent = symbol;
    const row = watchlist.rows.get(symbol);
    chartLast.textContent = row && row.last !== null ? formatPrice(row.last) : "";
    const url = new URL(window.location.href);
    url.searchParams.set("symbol", symbol);
    window.history.replaceState(null, "", url);
    chart.show(symbol);
  };
  const watchlist = new WatchList(document.getElementById("watchlist"), document.getElementById("watchlist-empty"), select);

  for (const button of buttons) {
    button.addEventListener("click", () => {
      for (const b of buttons) b.classList.toggle("active", b === button);
      if (chart.symbol) chart.show(chart.symbol, button.dataset.interval);
      else chart.interval = button.dataset.interval;
    });
  }

  const feed = new LiveFeed(config.streamUrl, document.getElementById("live-status"), {
    tick: (t) => {
      watchlist.update(t.symbol, t.price, t.ts);
      if (t.symbol === chart.symbol) chartLast.textContent = formatPrice(t.price);
      if (chart.onTick(t.symbol, t.price, t.ts)) chart.refreshIndicators();
    },
    signal: (s) => chart.onSignal(s),
  });

  const refresh = async () => {
    const data = await getJson("/v1/dashboard/watchlist");
    const known = watchlist.symbols().join(",");
    if (data.items.map((i) => i.symbol).join(",") !== known) {
      watchlist.load(data.items);
      if (chart.symbol) watchlist.select(chart.symbol);
    }
    feed.subscribe(watchlist.symbols());
    return data.items;
  };
  const items = await refresh();
  window.setInterval(() => refresh().catch(() => {}), WATCHLIST_REFRESH_MS);
  const wanted = new URL(window.location.href).searchParams.get("symbol");
  const first = items.find((i) => i.symbol === wanted) || items[0];
  if (first) select(first.symbol);
  document.body.dataset.ready = "true";
}

start().catch((error) => {
  document.getElementById("chart-message").textContent = `Dashboard failed to start: ${error.message}`;
  document.body.dataset.ready = "error";
});
