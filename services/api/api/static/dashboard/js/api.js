// Data access for the dashboard: the api's JSON endpoints and the page configuration.
// An API key, when the api requires one for reads, is kept in localStorage ("stocktrack.apiKey").

const KEY_STORAGE = "stocktrack.apiKey";

export async function getJson(path) {
  const headers = { Accept: "application/json" };
  const key = window.localStorage.getItem(KEY_STORAGE);
  if (key) headers["X-API-Key"] = key;
  const response = await fetch(path, { headers });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error) message = body.error.message;
    } catch (_) { /* not JSON: keep the status line */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

export async function loadConfig() {
  const config = await getJson("/dashboard/config.json");
  // Unset: the streamer on its own port of the page's host (8081, as `make run` starts it).
  // Empty: the page's own origin, where an ingress routes /v1/stream to the streamer.
  const streamUrl = config.stream_url ?? `${window.location.protocol}//${window.location.hostname}:8081`;
  return { ...config, streamUrl: streamUrl.replace(/\/+$/, "") };
}

export const seconds = (ms) => Math.floor(Number(ms) / 1000);

export function formatPrice(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return "–";
  return n.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: n < 1 ? 4 : 2 });
}

export function formatChange(last, reference) {
  const l = Number(last);
  const r = Number(reference);
  if (!Number.isFinite(l) || !Number.isFinite(r) || r === 0) return { text: "–", sign: 0 };
  const diff = l - r;
  const pct = (diff / r) * 100;
  const sign = diff > 0 ? 1 : diff < 0 ? -1 : 0;
  const plus = diff > 0 ? "+" : "";
  return { text: `${plus}${diff.toFixed(2)} (${plus}${pct.toFixed(2)}%)`, sign };
}
