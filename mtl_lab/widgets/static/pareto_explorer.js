// The Pareto explorer's picture: on the left the preference — a point on a segment (2 tasks) or in a
// triangle (3 tasks) that can be dragged; on the right the trade-off plane of two tasks' metrics with the
// sweep's points (grey), the learned front traced over a grid of preferences (line), and the model at the
// current preference (large dot). Dragging writes `preference` at most once per animation frame; Python
// runs the model at that preference (forward passes only) and sends back `current` and `metrics`
// (mtl_lab/widgets/pareto_explorer.py).

const NS = "http://www.w3.org/2000/svg";
const W = 760, H = 340, PANEL = 300, GAP = 60;
const FONT = "system-ui, sans-serif";

function make(tag, attrs, parent) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function text(parent, x, y, content, attrs) {
  const t = make("text", { x, y, "font-size": 12, "font-family": FONT, fill: "#222", ...attrs }, parent);
  t.textContent = content;
  return t;
}

// corners of the preference picture: a segment for 2 tasks, an equilateral triangle for 3
function corners(T) {
  if (T === 2) return [[30, 170], [270, 170]];
  return [[150, 40], [30, 250], [270, 250]];
}

function toScreen(r, C) {
  let x = 0, y = 0;
  r.forEach((w, t) => { x += w * C[t][0]; y += w * C[t][1]; });
  return [x, y];
}

// the preference (barycentric coordinates, clipped to the simplex) of a screen point
function toPreference(px, py, C) {
  if (C.length === 2) {
    const s = Math.min(1, Math.max(0, (px - C[0][0]) / (C[1][0] - C[0][0])));
    return [1 - s, s];
  }
  const [[x1, y1], [x2, y2], [x3, y3]] = C;
  const det = (y2 - y3) * (x1 - x3) + (x3 - x2) * (y1 - y3);
  let a = ((y2 - y3) * (px - x3) + (x3 - x2) * (py - y3)) / det;
  let b = ((y3 - y1) * (px - x3) + (x1 - x3) * (py - y3)) / det;
  let c = 1 - a - b;
  [a, b, c] = [a, b, c].map((v) => Math.max(0, v));
  const sum = a + b + c;
  return [a / sum, b / sum, c / sum];
}

function render({ model, el }) {
  el.classList.add("mtl-explorer-view");
  const svg = make("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, el);
  svg.style.width = "100%";
  svg.style.maxWidth = `${W}px`;
  svg.style.touchAction = "none";
  svg.style.userSelect = "none";
  const left = make("g", {}, svg);
  const right = make("g", { transform: `translate(${PANEL + GAP}, 0)` }, svg);
  const plane = make("g", {}, right);
  const dot = make("g", {}, right);
  let dragging = false, pending = null, frame = 0, drags = 0, updates = 0;

  const C = () => corners(model.get("task_names").length);

  function drawPreference() {
    left.innerHTML = "";
    const names = model.get("task_names"), colors = model.get("task_colors"), r = model.get("preference");
    const c = C();
    if (c.length === 2) {
      make("line", { x1: c[0][0], y1: c[0][1], x2: c[1][0], y2: c[1][1], stroke: "#999", "stroke-width": 6,
        "stroke-linecap": "round" }, left);
    } else {
      make("polygon", { points: c.map((p) => p.join(",")).join(" "), fill: "#f4f4f4", stroke: "#999",
        "stroke-width": 2 }, left);
    }
    c.forEach((p, t) => {
      const below = c.length === 2 || t > 0;
      text(left, p[0], p[1] + (below ? 26 : -12), `${names[t]} only`, { "text-anchor": "middle", fill: colors[t],
        "font-weight": 600 });
    });
    text(left, 150, 18, "preference r — drag the dot", { "text-anchor": "middle", "font-weight": 600 });
    const [x, y] = toScreen(r, c);
    const handle = make("circle", { cx: x, cy: y, r: 11, fill: "#222", "fill-opacity": 0.85, stroke: "#fff",
      "stroke-width": 2, class: "mtl-explorer-handle" }, left);
    handle.style.cursor = "grab";
    handle.addEventListener("pointerdown", (e) => {
      dragging = true;
      svg.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    text(left, 150, c.length === 2 ? 230 : 300, "r = (" + r.map((v) => v.toFixed(2)).join(", ") + ")",
      { "text-anchor": "middle", "font-family": "ui-monospace, monospace" });
  }

  const box = () => model.get("extent"); // [xmin, xmax, ymin, ymax] of the trade-off plane
  const px = (x) => { const [a, b] = box(); return 50 + ((x - a) / (b - a)) * (PANEL - 60); };
  const py = (y) => { const [, , a, b] = box(); return H - 50 - ((y - a) / (b - a)) * (H - 90); };

  function drawPlane() {
    plane.innerHTML = "";
    const [xa, xb, ya, yb] = box(), labels = model.get("axis_labels");
    make("rect", { x: 50, y: 40, width: PANEL - 60, height: H - 90, fill: "none", stroke: "#ccc" }, plane);
    text(plane, 50 + (PANEL - 60) / 2, H - 14, labels[0], { "text-anchor": "middle" });
    const yl = text(plane, 14, 40 + (H - 90) / 2, labels[1], { "text-anchor": "middle" });
    yl.setAttribute("transform", `rotate(-90 14 ${40 + (H - 90) / 2})`);
    [[xa, "start"], [xb, "end"]].forEach(([v, anchor]) => text(plane, px(v), H - 34, v.toPrecision(3),
      { "text-anchor": anchor, "font-size": 10, fill: "#666" }));
    [ya, yb].forEach((v) => text(plane, 46, py(v) + 3, v.toPrecision(3), { "text-anchor": "end", "font-size": 10,
      fill: "#666" }));
    for (const [x, y] of model.get("sweep_points")) {
      make("circle", { cx: px(x), cy: py(y), r: 4.5, fill: "#bbb", stroke: "#555", "stroke-width": 0.8 }, plane);
    }
    const curve = model.get("learned_curve");
    if (model.get("task_names").length === 2 && curve.length > 1) { // a front in order of the preference
      make("polyline", { points: curve.map(([x, y]) => `${px(x)},${py(y)}`).join(" "), fill: "none",
        stroke: model.get("accent"), "stroke-width": 2, "stroke-opacity": 0.6 }, plane);
    } else { // three tasks: a grid of the triangle seen on two axes has no order, so dots
      for (const [x, y] of curve) {
        make("circle", { cx: px(x), cy: py(y), r: 2.5, fill: model.get("accent"), "fill-opacity": 0.55 }, plane);
      }
    }
    const learnedMark = model.get("task_names").length === 2 ? "—" : "•";
    text(plane, 50, 30, `● sweep (one model per weight)   ${learnedMark} learned front (one model)`,
      { "font-size": 11, fill: "#444" });
  }

  function drawDot() {
    dot.innerHTML = "";
    const cur = model.get("current");
    if (cur.length === 2) {
      make("circle", { cx: px(cur[0]), cy: py(cur[1]), r: 8, fill: model.get("accent"), stroke: "#000",
        "stroke-width": 1.2 }, dot);
    }
    const lines = model.get("metrics");
    text(dot, PANEL + 2, 56, "at r:", { "font-size": 11, fill: "#444" });
    lines.forEach((line, t) => text(dot, PANEL + 2, 74 + 17 * t, line, { "text-anchor": "start",
      "font-family": "ui-monospace, monospace", fill: model.get("task_colors")[t] || "#222",
      "paint-order": "stroke", stroke: "#fff", "stroke-width": 3 }));
    el.dataset.metrics = JSON.stringify(lines);
  }

  function flush() {
    frame = 0;
    if (pending === null) return;
    model.set("preference", pending);
    model.save_changes();
    pending = null;
    drags += 1;
    el.dataset.drags = String(drags);
  }

  svg.addEventListener("pointermove", (e) => {
    if (!dragging) return;
    const b = svg.getBoundingClientRect();
    const x = ((e.clientX - b.left) / b.width) * W, y = ((e.clientY - b.top) / b.height) * H;
    const r = toPreference(x, y, C()).map((v) => Math.round(v * 1000) / 1000);
    pending = r;
    model.set("preference", r); // local: the handle follows the pointer at once
    drawPreference();
    if (!frame) frame = requestAnimationFrame(flush);
  });
  const end = () => { if (dragging) { dragging = false; flush(); } };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);

  model.on("change:current", () => {
    drawDot();
    updates += 1;
    el.dataset.updates = String(updates); // how many times Python's answer was drawn (measured by the benchmark)
  });
  model.on("change:metrics", drawDot);
  model.on("change:preference", () => { if (!dragging) drawPreference(); });
  for (const name of ["extent", "sweep_points", "learned_curve", "axis_labels", "task_names"]) {
    model.on(`change:${name}`, () => { drawPreference(); drawPlane(); drawDot(); });
  }
  drawPreference(); drawPlane(); drawDot();
}

export default { render };
