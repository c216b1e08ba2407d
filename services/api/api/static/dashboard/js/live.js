// Live updates from the streamer's Server-Sent Events endpoint. EventSource reconnects by
// itself after a dropped connection and sends Last-Event-ID, so nothing is missed; when the
// streamer refuses outright (restarting, overloaded), EventSource gives up, so the feed opens a
// new one after a pause and passes the last event id in the query instead.

const RETRY_MS = 5000;

export class LiveFeed {
  constructor(streamUrl, statusEl, handlers) {
    this.streamUrl = streamUrl;
    this.statusEl = statusEl;
    this.handlers = handlers;
    this.source = null;
    this.symbols = [];
    this.lastEventId = null;
    this.retryTimer = null;
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
    this.open();
  }

  open() {
    window.clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
    if (!this.symbols.length) return;
    let query = `symbols=${encodeURIComponent(this.symbols.join(","))}&types=ticks,signals`;
    if (this.lastEventId) query += `&last_event_id=${encodeURIComponent(this.lastEventId)}`;
    this.setStatus("connecting", "connecting…");
    const source = new EventSource(`${this.streamUrl}/v1/stream?${query}`);
    this.source = source;
    let opened = false;
    source.onopen = () => {
      opened = true;
      this.setStatus("live", "live");
    };
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) {
        this.setStatus("connecting", "reconnecting…");
        return;
      }
      // Refused before it ever opened: perhaps the resume point is gone (410); start from now.
      if (!opened) this.lastEventId = null;
      this.setStatus("offline", "offline, retrying…");
      this.retryTimer = window.setTimeout(() => this.open(), RETRY_MS);
    };
    const dispatch = (kind) => (event) => {
      if (event.lastEventId) this.lastEventId = event.lastEventId;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      this.setStatus("live", "live");
      const handler = this.handlers[kind];
      if (handler) handler(data);
    };
    source.addEventListener("tick", dispatch("tick"));
    source.addEventListener("signal", dispatch("signal"));
  }
}
