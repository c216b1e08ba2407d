// Data access for the dashboard: the api's JSON endpoints, the page configuration, and the retry
// rule every load follows. An API key, when the api asks for one (reads with
// API_READ_REQUIRES_KEY, or adding a symbol), is kept in sessionStorage ("stocktrack.apiKey"):
// it lasts as long as the tab and is never written to disk by the page.

const KEY_STORAGE = "stocktrack.apiKey";
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 30_000;

export const apiKey = () => window.sessionStorage.getItem(KEY_STORAGE);

export function setApiKey(key) {
  if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
  else window.sessionStorage.removeItem(KEY_STORAGE);
}

export class HttpError extends Error {
  constructor(message, status, retryAfterMs) {
    super(message);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

// Retry-After is either seconds or an HTTP date (RFC 9110 section 10.2.3).
function retryAfterMs(response) {
  const value = response.headers.get("Retry-After");
  if (!value) return null;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const when = Date.parse(value);
  return Number.isFinite(when) ? Math.max(0, when - Date.now()) : null;
}

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const parsed = await response.json();
      if (parsed && parsed.error) message = `${response.status}: ${parsed.error.message}`;
    } catch (_) { /* not JSON: keep the status line */ }
    throw new HttpError(message, response.status, retryAfterMs(response));
  }
  return response.json();
}

export const getJson = (path) => request("GET", path);
export const postJson = (path, body) => request("POST", path, body);

// Worth asking again: the network failed, the server was busy or briefly broken. A refusal of
// the request itself (400, 401, 403, 404, 422) would only be refused again.
export const retryable = (error) =>
  !(error instanceof HttpError) || error.status === 408 || error.status === 429 || error.status >= 500;

// Exponential backoff with jitter, never shorter than the server's Retry-After.
export function backoffMs(attempt, error) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  const jittered = base / 2 + Math.random() * (base / 2);
  const floor = error && error.retryAfterMs != null ? error.retryAfterMs : 0;
  return Math.max(jittered, floor);
}

const pause = (ms) => new Promise((resolve) => window.setTimeout(resolve, ms));

export class Superseded extends Error {}

// Runs `load` until it succeeds or fails for a reason retrying cannot fix; `onWait(error, ms)`
// is told each time it waits, so the page can say what is wrong and when it tries again. When
// `wanted()` turns false (the user picked another symbol meanwhile) it stops with Superseded.
export async function withRetry(load, onWait = () => {}, wanted = () => true) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await load();
    } catch (error) {
      if (!retryable(error)) throw error;
      const wait = backoffMs(attempt, error);
      onWait(error, wait);
      await pause(wait);
      if (!wanted()) throw new Superseded("superseded");
    }
  }
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
