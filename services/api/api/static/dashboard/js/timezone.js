// Which clock the chart speaks: the browser's own time zone by default, or UTC. lightweight-charts
// keeps every time in UTC seconds; these formatters only change what the axis and readouts say,
// so switching zones never touches the data.

const ZONE_STORAGE = "stocktrack.timeZone";
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

export class Clock {
  constructor() {
    this.listeners = [];
    this.useUtc = window.localStorage.getItem(ZONE_STORAGE) === "UTC";
  }

  get zone() {
    return this.useUtc ? "UTC" : LOCAL_ZONE;
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  toggle() {
    this.useUtc = !this.useUtc;
    window.localStorage.setItem(ZONE_STORAGE, this.useUtc ? "UTC" : "local");
    for (const listener of this.listeners) listener(this);
  }

  format(tsSeconds, options) {
    return new Intl.DateTimeFormat(undefined, { hourCycle: "h23", timeZone: this.zone, ...options }).format(
      new Date(tsSeconds * 1000),
    );
  }

  // The zone's name and its offset at `tsSeconds`, e.g. "Asia/Tokyo (UTC+9)".
  label(tsSeconds = Date.now() / 1000) {
    if (this.useUtc) return "UTC";
    const parts = new Intl.DateTimeFormat("en-US", { timeZone: this.zone, timeZoneName: "shortOffset" })
      .formatToParts(new Date(tsSeconds * 1000));
    const offset = (parts.find((p) => p.type === "timeZoneName") || {}).value || "";
    return `${this.zone} (${offset.replace("GMT", "UTC") || "UTC"})`;
  }

  // The crosshair's time label and the readout: full date and time.
  dateTime(tsSeconds, daily) {
    return daily
      ? this.format(tsSeconds, { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" })
      : this.format(tsSeconds, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  // Tick marks, by lightweight-charts' TickMarkType: 0 year, 1 month, 2 day, 3 time, 4 time with seconds.
  // Daily bars are calendar days, named in UTC whatever the zone, or a day would shift back a date.
  tickMark(tsSeconds, type, daily) {
    const zone = daily ? { timeZone: "UTC" } : {};
    if (type === 0) return this.format(tsSeconds, { year: "numeric", ...zone });
    if (type === 1) return this.format(tsSeconds, { month: "short", ...zone });
    if (type === 2) return this.format(tsSeconds, { day: "numeric", month: "short", ...zone });
    return this.format(tsSeconds, { hour: "2-digit", minute: "2-digit", ...(type === 4 ? { second: "2-digit" } : {}) });
  }
}
