// Live updates from the streamer's Server-Sent Events endpoint. EventSource reconnects by
// itself after a dropped connection and sends Last-Event-ID, so nothing is missed; when the
// streamer refuses outright (restarting, overloaded, rate limited), EventSource gives up, so the
// feed opens a new one after a growing pause and passes the last event id in the query instead.
// EventSource cannot send headers: an API key goes as the `api_key` query parameter.
import { apiKey, backoffMs } from "./api.js";

export class LiveFeed {
  constructor(streamUrl, statusEl, handlers) {
    this.streamUrl = streamUrl;
    this.statusEl = statusEl;
    this.handlers = handlers;
    this.source = null;
    this.symbols = [];
    this.lastEventId = null;
    this.retryTimer = null;
    this.failures = 0;
  }

  setStatus(state, text) {
    this.statusEl.dataset.state = state;
    this.statusEl.textContent = text;
  }

  subscribe(symbols) {
    const wanted = [...symbols].sort();
    if (this.source && wanted.join(",") === this.symbols.join(",")) return;
    this.symbols = wanted;
    this.lastEventId = null; // a new subscription starts from now
    this.failures = 0;
    this.open();
  }

  open() {
    window.clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
    if (!this.symbols.length) {
      this.setStatus("offline", "no symbols to follow");
      return;
    }
    let query = `symbols=${encodeURIComponent(this.symbols.join(","))}&types=ticks,signals`;
    if (this.lastEventId) query += `&last_event_id=${encodeURIComponent(this.lastEventId)}`;
    const key = apiKey();
    if (key) query += `&api_key=${encodeURIComponent(key)}`;
    this.setStatus("connecting", this.failures ? `reconnecting (attempt ${this.failures + 1})…` : "connecting…");
    const source = new EventSource(`${this.streamUrl}/v1/stream?${query}`);
    this.source = source;
    let opened = false;
    source.onopen = () => {
      opened = true;
      this.failures = 0;
      this.setStatus("live", "live");
    };
    source.onerror = () => {
      if (source !== this.source) return;
      if (source.readyState !== EventSource.CLOSED) {
        this.setStatus("connecting", "connection lost, reconnecting…");
        return;
      }
      // Refused before it ever opened: perhaps the resume point is gone (410); start from now.
      if (!opened) this.lastEventId = null;
      const wait = backoffMs(this.failures);
      this.failures += 1;
      this.setStatus("offline", `offline, retrying in ${Math.ceil(wait / 1000)} s`);
      this.retryTimer = window.setTimeout(() => this.open(), wait);
    };
    const dispatch = (kind) => (event) => {
      if (event.lastEventId) this.lastEventId = event.lastEventId;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (this.statusEl.dataset.state !== "live") this.setStatus("live", "live");
      const handler = this.handlers[kind];
      if (handler) handler(data);
    };
    source.addEventListener("tick", dispatch("tick"));
    source.addEventListener("signal", dispatch("signal"));
  }
}
