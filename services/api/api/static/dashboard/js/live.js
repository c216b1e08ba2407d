// Live updates from the streamer's Server-Sent Events endpoint. EventSource reconnects on its
// own and sends Last-Event-ID, so the streamer resumes where the page left off.

export class LiveFeed {
  constructor(streamUrl, statusEl, handlers) {
    this.streamUrl = streamUrl;
    this.statusEl = statusEl;
    this.handlers = handlers;
    this.source = null;
    this.symbols = [];
  }

  setStatus(state, text) {
    this.statusEl.dataset.state = state;
    this.statusEl.textContent = text;
  }

  subscribe(symbols) {
    const wanted = [...symbols].sort();
    if (this.source && wanted.join(",") === this.symbols.join(",")) return;
    this.symbols = wanted;
    if (this.source) this.source.close();
    if (!wanted.length) return;
    const query = `symbols=${encodeURIComponent(wanted.join(","))}&types=ticks,signals`;
    this.setStatus("connecting", "connecting…");
    const source = new EventSource(`${this.streamUrl}/v1/stream?${query}`);
    this.source = source;
    source.onopen = () => this.setStatus("live", "live");
    source.onerror = () => this.setStatus(source.readyState === EventSource.CLOSED ? "offline" : "connecting",
      source.readyState === EventSource.CLOSED ? "offline" : "reconnecting…");
    const dispatch = (kind) => (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      this.setStatus("live", "live");
      const handler = this.handlers[kind || data.type];
      if (handler) handler(data.data && typeof data.data === "object" ? data.data : data);
    };
    source.addEventListener("tick", dispatch("tick"));
    source.addEventListener("signal", dispatch("signal"));
    source.addEventListener("bar", dispatch("bar"));
    source.onmessage = dispatch(null);
  }
}
