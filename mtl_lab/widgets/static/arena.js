// The gradient arena's picture: task gradients as arrows whose tips can be dragged, every method's update
// as a thick arrow, and for each task the half-plane where a step would raise its loss (light tint).
// Dragging writes the new gradients to the model at most once per animation frame; Python recomputes the
// methods' updates and sends them back as `arrows` (mtl_lab/widgets/arena.py).

const NS = "http://www.w3.org/2000/svg";
const SIZE = 440;

function make(tag, attrs, parent) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function render({ model, el }) {
  el.classList.add("mtl-arena-view");
  const svg = make("svg", { viewBox: `0 0 ${SIZE} ${SIZE}`, role: "img" }, el);
  svg.style.width = "100%";
  svg.style.maxWidth = `${SIZE}px`;
  svg.style.touchAction = "none";
  svg.style.userSelect = "none";
  const defs = make("defs", {}, svg);
  const planes = make("g", {}, svg);
  const axes = make("g", {}, svg);
  const methods = make("g", {}, svg);
  const tasks = make("g", {}, svg);
  let dragging = -1, pending = null, frame = 0, drags = 0;

  const scale = () => SIZE / 2 / model.get("extent");
  const toScreen = ([x, y]) => [SIZE / 2 + x * scale(), SIZE / 2 - y * scale()];
  const toWorld = (px, py) => [(px - SIZE / 2) / scale(), (SIZE / 2 - py) / scale()];

  function marker(id, color) {
    if (defs.querySelector(`#${id}`)) return;
    const m = make("marker", { id, viewBox: "0 0 10 10", refX: 8, refY: 5, markerWidth: 5, markerHeight: 5,
      orient: "auto-start-reverse" }, defs);
    make("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: color }, m);
  }

  function arrow(parent, from, to, color, width, id, dash) {
    marker(id, color);
    const [x0, y0] = toScreen(from), [x1, y1] = toScreen(to);
    return make("line", { x1: x0, y1: y0, x2: x1, y2: y1, stroke: color, "stroke-width": width,
      "marker-end": `url(#${id})`, "stroke-dasharray": dash || "" }, parent);
  }

  function label(parent, at, text, color, weight) {
    const [x, y] = toScreen(at);
    const t = make("text", { x: x + 6, y: y - 6, fill: color, "font-size": 13, "font-weight": weight || 400,
      "font-family": "system-ui, sans-serif", "paint-order": "stroke", stroke: "#fff", "stroke-width": 3 }, parent);
    t.textContent = text;
  }

  function drawPlanes() {
    planes.innerHTML = "";
    const G = model.get("gradients"), colors = model.get("task_colors");
    G.forEach(([gx, gy], t) => {
      const n = Math.hypot(gx, gy);
      if (!(n > 0)) return;
      // the half-plane {x : g·x < 0}: a big polygon on the side opposite to g
      const ux = gx / n, uy = gy / n, R = 4 * model.get("extent");
      const pts = [[-uy * R, ux * R], [-uy * R - ux * R, ux * R - uy * R], [uy * R - ux * R, -ux * R - uy * R], [uy * R, -ux * R]];
      make("polygon", { points: pts.map((p) => toScreen(p).join(",")).join(" "), fill: colors[t], "fill-opacity": 0.08 }, planes);
      const [a, b] = [toScreen([-uy * R, ux * R]), toScreen([uy * R, -ux * R])];
      make("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: colors[t], "stroke-opacity": 0.35, "stroke-dasharray": "4 4" }, planes);
    });
  }

  function drawAxes() {
    axes.innerHTML = "";
    make("rect", { x: 0, y: 0, width: SIZE, height: SIZE, fill: "none", stroke: "#ccc" }, axes);
    make("line", { x1: 0, y1: SIZE / 2, x2: SIZE, y2: SIZE / 2, stroke: "#bbb" }, axes);
    make("line", { x1: SIZE / 2, y1: 0, x2: SIZE / 2, y2: SIZE, stroke: "#bbb" }, axes);
  }

  function drawMethods() {
    methods.innerHTML = "";
    for (const a of model.get("arrows")) {
      if (!a.d) continue;
      arrow(methods, [0, 0], a.d, a.color, 4, `m-${a.method}`);
      label(methods, a.d, `${a.method}`, a.color, 600);
    }
    el.dataset.arrows = JSON.stringify(model.get("arrows").map((a) => a.d));
  }

  function drawTasks() {
    tasks.innerHTML = "";
    const G = model.get("gradients"), colors = model.get("task_colors"), names = model.get("task_names");
    G.forEach((g, t) => {
      arrow(tasks, [0, 0], g, colors[t], 2, `t-${t}`);
      label(tasks, g, `g${t + 1} ${names[t] || ""}`, colors[t], 400);
      const [x, y] = toScreen(g);
      const tip = make("circle", { cx: x, cy: y, r: 9, fill: colors[t], "fill-opacity": 0.25, stroke: colors[t],
        "stroke-width": 1.5, class: "mtl-arena-tip", "data-task": t }, tasks);
      tip.style.cursor = "grab";
      tip.addEventListener("pointerdown", (e) => {
        dragging = t;
        svg.setPointerCapture(e.pointerId);
        e.preventDefault();
      });
    });
  }

  function redrawAll() { drawPlanes(); drawAxes(); drawMethods(); drawTasks(); }

  function flush() {
    frame = 0;
    if (pending === null) return;
    model.set("gradients", pending);
    model.save_changes();
    pending = null;
    drags += 1;
    el.dataset.drags = String(drags);
  }

  svg.addEventListener("pointermove", (e) => {
    if (dragging < 0) return;
    const box = svg.getBoundingClientRect();
    const px = ((e.clientX - box.left) / box.width) * SIZE, py = ((e.clientY - box.top) / box.height) * SIZE;
    const G = model.get("gradients").map((g) => g.slice());
    G[dragging] = toWorld(px, py).map((v) => Math.round(v * 1000) / 1000);
    pending = G;
    model.set("gradients", G); // local: the picture follows the pointer at once
    drawPlanes(); drawTasks();
    if (!frame) frame = requestAnimationFrame(flush);
  });
  const end = () => { if (dragging >= 0) { dragging = -1; flush(); } };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);

  let updates = 0;
  model.on("change:arrows", () => {
    drawMethods();
    updates += 1;
    el.dataset.updates = String(updates); // how many times Python's answer was redrawn (measured by the benchmark)
  });
  model.on("change:gradients", () => { if (dragging < 0) { drawPlanes(); drawTasks(); } });
  model.on("change:extent", redrawAll);
  model.on("change:task_colors", redrawAll);
  redrawAll();
}

export default { render };
