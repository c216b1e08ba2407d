// A tiny inline SVG line of recent closes; green when the last point is above the first.

const NS = "http://www.w3.org/2000/svg";

export function renderSparkline(svg, values, width = 110, height = 28) {
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const points = values.map(Number).filter(Number.isFinite);
  if (points.length < 2) return;
  const min = Math.min(...points);
  const max = Math.max(...points);
  const span = max - min || 1;
  const step = width / (points.length - 1);
  const coords = points.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - ((v - min) / span) * (height - 4)).toFixed(1)}`);
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", coords.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke-width", "1.5");
  line.setAttribute("stroke", points[points.length - 1] >= points[0] ? "#26a69a" : "#ef5350");
  svg.appendChild(line);
}
