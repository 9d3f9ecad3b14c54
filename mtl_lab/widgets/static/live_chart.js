// The live chart of the weight-tuning lab, drawn in the browser with uPlot (vendored beside this file).
//
// Python (mtl_lab/widgets/transport.py) sends data, never images:
//   {kind: "reset", streams: {step: cols, diag: cols, val: cols}, log: {...}}  + one buffer per stream
//   {kind: "append", stream, start, cols}                                  + one Float64 buffer of rows
// A row of "step" is [step, smoothed loss per run and task, weight per run and task]; of "diag" [step,
// share per task, cosine per task pair, norm per task] (of one run); of "val" [step, validation loss per
// run and task]. One run (the lab's) draws each task in its colour; a race (the "racers" trait: 2-4
// {label, color}) draws each racer in its method's colour and each task with its dash, R x T lines.
// Appends only extend what this view has: one that does not start where the view's rows end (a view
// created late, a lost message) asks Python for a reset with {kind: "hello"} and waits for it.
// Redraws are coalesced to one per animation frame. Left: losses (train lines, validation dots, kept
// runs faint in their method's colour) and effective weights. Right: each task's share of the update
// (stacked), the pairwise cosines as a heat strip (orange = conflict; never task colours) and the norms.
// Every task has its colour and its dash (the "dashes" trait, from mtl_lab/palette.py), so lines differ
// without colour too. Projector mode (the "projector" trait) draws 16 px type and thicker lines.

const FACE = "system-ui, -apple-system, 'Segoe UI', sans-serif";
const GUTTER = 104; // the right column's y-axis width: room for the heat strip's pair labels

function look(projector) {
  const px = projector ? 16 : 12;
  const font = `${px}px ${FACE}`;
  return {
    px, font, line: projector ? 2.6 : 1.6, scale: projector ? 1.6 : 1,
    axis: { font, size: projector ? 64 : 44, gap: 3, grid: { stroke: "#eee", width: 1 }, ticks: { stroke: "#ccc", width: 1 } },
  };
}

function hexToRgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function alpha(hex, a) {
  const [r, g, b] = hexToRgb(hex);
  return `rgba(${r},${g},${b},${a})`;
}

function cosineColor(c, palette) {
  if (c === null || Number.isNaN(c)) return "#ffffff";
  const t = Math.min(1, Math.abs(c));
  const mid = hexToRgb(palette.zero), end = hexToRgb(c < 0 ? palette.negative : palette.positive);
  const rgb = mid.map((m, i) => Math.round(m + (end[i] - m) * t));
  return `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
}

function div(cls, parent, text) {
  const d = document.createElement("div");
  d.className = cls;
  if (text !== undefined) d.textContent = text;
  if (parent) parent.appendChild(d);
  return d;
}

function emptyStreams(T, P, R) {
  const K = R * T;
  return {
    step: { x: [], loss: [...Array(K)].map(() => []), w: [...Array(K)].map(() => []) },
    diag: { x: [], share: [...Array(T)].map(() => []), cos: [...Array(P)].map(() => []), norm: [...Array(T)].map(() => []) },
    val: { x: [], loss: [...Array(K)].map(() => []) },
  };
}

function appendRows(state, stream, rows, cols) {
  const T = state.tasks.length, P = state.pairs.length, K = state.R * T, s = state.data[stream];
  for (let r = 0; r < rows.length / cols; r++) {
    const o = r * cols;
    s.x.push(rows[o]);
    if (stream === "step") {
      for (let k = 0; k < K; k++) { s.loss[k].push(rows[o + 1 + k]); s.w[k].push(rows[o + 1 + K + k]); }
    } else if (stream === "diag") {
      for (let t = 0; t < T; t++) { s.share[t].push(rows[o + 1 + t]); s.norm[t].push(rows[o + 1 + T + P + t]); }
      for (let p = 0; p < P; p++) s.cos[p].push(rows[o + 1 + T + p]);
    } else {
      for (let k = 0; k < K; k++) s.loss[k].push(rows[o + 1 + k]);
    }
  }
}

function finite(v) { return v === null || Number.isFinite(v) ? v : null; }

function render({ model, el }) {
  el.classList.add("mtl-live-chart");
  const root = div("mlc-root", el);
  const head = div("mlc-head", root);
  const title = div("mlc-title", head);
  const legend = div("mlc-legend", head);
  const note = div("mlc-note", root);
  const grid = div("mlc-grid", root);
  const left = div("mlc-col", grid), right = div("mlc-col", grid);
  const panel = (parent, text) => { const box = div("mlc-panel", parent); div("mlc-ptitle", box, text); return box; };
  const titleOf = (box) => box.querySelector(".mlc-ptitle");
  const tools = div("mlc-tools", head);
  const png = document.createElement("button");
  png.className = "mlc-export";
  png.textContent = "⤓ PNG";
  png.title = "save the chart as it is now (PNG, twice the screen's density)";
  tools.appendChild(png);
  const lossBox = panel(left, "Per-task loss (lines: train, smoothed · dots: validation · faint: kept runs)");
  const weightBox = panel(left, "Effective task weights w_t");
  const weightTitle = titleOf(weightBox);
  const shareBox = panel(right, "Share of the update per task (stacked, sums to 1)");
  const cosBox = panel(right, "Gradient cosine per task pair (heat strip: orange < 0 = conflict)");
  const normBox = panel(right, "Gradient norm ‖g_t‖ per task");
  const cosCanvas = document.createElement("canvas");
  cosCanvas.className = "mlc-strip";
  cosBox.appendChild(cosCanvas);
  const cosScale = div("mlc-scale", cosBox);

  const state = { tasks: [], pairs: [], data: emptyStreams(0, 0, 1), R: 1, ready: false, frames: 0, plots: [], log: {},
                  look: look(false), heights: { loss: 220, small: 110 } };
  let pending = false;

  function markersHook(u) {
    const ctx = u.ctx, marks = model.get("markers") || [];
    if (!marks.length) return;
    ctx.save();
    ctx.strokeStyle = "#555";
    ctx.fillStyle = "#333";
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = Math.max(1, devicePixelRatio);
    ctx.font = `${state.look.px * devicePixelRatio}px ${FACE}`;
    let lastEnd = -Infinity, row = 0;
    for (const m of marks) {
      const x = u.valToPos(m.step, "x", true);
      if (!(x >= u.bbox.left && x <= u.bbox.left + u.bbox.width)) continue;
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      if (u !== state.plots[0]) continue;
      // a label never leaves the plot (it flips to the line's left near the right edge) and never
      // overlaps the previous one (it drops a row)
      const width = ctx.measureText(m.label).width, gap = 3 * devicePixelRatio;
      const right = u.bbox.left + u.bbox.width;
      let at = x + gap + width <= right ? x + gap : Math.max(u.bbox.left, x - gap - width);
      row = at < lastEnd ? row + 1 : 0;
      lastEnd = at + width + gap;
      ctx.fillText(m.label, at, u.bbox.top + (row + 1) * (state.look.px + 2) * devicePixelRatio);
    }
    ctx.restore();
  }

  function xRange() {
    const planned = model.get("planned_steps");
    const xs = state.data.step.x;
    const last = xs.length ? xs[xs.length - 1] : 1;
    return [0, Math.max(planned || 0, last, 1)];
  }

  // a race's weight axis (asinh): ticks at 0 and a few powers of ten, labelled 1e5 rather than 100,000,
  // so that the labels neither crowd nor get cut at the axis' edge
  const weightTicks = {
    splits: (u, axis, lo, hi) => {
      const top = Math.max(0, Math.ceil(Math.log10(Math.max(Math.abs(lo), Math.abs(hi), 1))));
      const stride = Math.max(1, Math.ceil(top / 3)), out = [0];
      // from 10^stride when the axis reaches 10^4 or more: there 1 would sit on 0
      for (let k = stride > 1 ? stride : 0; k <= top; k += stride) {
        if (10 ** k <= hi) out.push(10 ** k);
        if (-(10 ** k) >= lo) out.unshift(-(10 ** k));
      }
      return out;
    },
    filter: (u, splits) => splits, // every split above is labelled (uPlot's own filter is for its log splits)
    values: (u, splits) => splits.map((v) => (v == null ? "" : Math.abs(v) >= 1000 ? `${v < 0 ? "-" : ""}1e${Math.round(Math.log10(Math.abs(v)))}` : String(v))),
  };

  function makePlot(box, series, yScale, height, axisSize = 52, yTicks = undefined) {
    const y = { ...state.look.axis, size: axisSize * state.look.scale, ...(yTicks || {}) };
    const opts = {
      width: Math.max(200, box.clientWidth || 400), height,
      legend: { show: false }, cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: { x: { time: false, range: () => xRange() }, y: yScale },
      axes: [{ ...state.look.axis, size: state.look.px * 2.5 }, y],
      series: [{}, ...series],
      hooks: { draw: [markersHook] },
    };
    const u = new uPlot(opts, [[], ...series.map(() => [])], box);
    state.plots.push(u);
    return u;
  }

  function build() {
    for (const u of state.plots) u.destroy();
    state.plots = [];
    const tasks = model.get("tasks"), colors = model.get("colors"), pins = model.get("pinned") || [];
    const dashes = model.get("dashes") || [];
    const dash = (t) => (dashes[t] || []).map((v) => v * state.look.scale);
    state.look = look(model.get("projector"));
    el.classList.toggle("mlc-projector", !!model.get("projector"));
    el.dataset.fontPx = String(state.look.px);
    state.tasks = tasks;
    state.pairs = [];
    for (let i = 0; i < tasks.length; i++) for (let j = i + 1; j < tasks.length; j++) state.pairs.push(`${tasks[i]}·${tasks[j]}`);
    const T = tasks.length, R = state.R, racers = model.get("racers") || [];
    // tasks switched before the next run: the rows held are of other tasks, and go (a reset follows)
    if (state.data.step.loss.length !== R * T) state.data = emptyStreams(T, (T * (T - 1)) / 2, R);
    const color = (r, t) => (racers[r] && racers[r].color) || colors[t]; // a racer's method, else the task
    const logY = (on) => (on ? { distr: 3 } : { auto: true });
    const loss = [], weights = [];
    const L = state.look.line, H = state.heights;
    for (let r = 0; r < R; r++) for (let t = 0; t < T; t++) loss.push({ stroke: color(r, t), width: L, dash: dash(t) });
    for (let r = 0; r < R; r++) for (let t = 0; t < T; t++) loss.push({ stroke: color(r, t), width: 0, spanGaps: true, points: { show: true, size: 6 * state.look.scale, fill: color(r, t), stroke: color(r, t) }, paths: () => null });
    for (let r = 0; r < R; r++) for (let t = 0; t < T; t++) weights.push({ stroke: color(r, t), width: L, dash: dash(t) });
    pins.forEach((pin) => {
      if (pin.hidden) return;
      const c = pin.color || "#555555";
      for (let t = 0; t < T; t++) loss.push({ stroke: alpha(c, 0.55), width: L * 0.8, dash: dash(t), spanGaps: true });
    });
    state.lossPlot = makePlot(lossBox, loss, logY(state.log.loss !== false), H.loss);
    // in a race one method's weights may be 10^5 times another's: an asinh axis (linear within ±1,
    // logarithmic beyond) keeps every racer readable; one run keeps the plain linear axis
    weightTitle.textContent = R > 1 ? "Effective task weights w_t (asinh axis: linear below 1, logarithmic above)"
                                    : "Effective task weights w_t";
    state.weightPlot = R > 1 ? makePlot(weightBox, weights, { distr: 4, asinh: 1 }, H.small, 52, weightTicks)
                             : makePlot(weightBox, weights, { auto: true }, H.small);
    const share = [];
    for (let t = T - 1; t >= 0; t--) share.push({ stroke: colors[t], width: 0, fill: alpha(colors[t], 0.85) });
    for (let t = T - 1; t >= 0; t--) share.push({ stroke: colors[t], width: 0, fill: alpha(colors[t], 0.45) });
    state.sharePlot = makePlot(shareBox, share, { auto: true, range: (u, lo, hi) => [Math.min(0, lo), Math.max(1, hi)] }, H.small, GUTTER);
    state.normPlot = makePlot(normBox, tasks.map((_, t) => ({ stroke: colors[t], width: L, dash: dash(t) })), logY(state.log.norm !== false), H.small, GUTTER);
    drawLegend();
    sizeStrip();
    schedule();
  }

  function drawLegend() {
    const tasks = model.get("tasks"), colors = model.get("colors"), pins = model.get("pinned") || [];
    legend.innerHTML = "";
    const dashes = model.get("dashes") || [];
    const swatch = (item, color, dash) => {
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("width", "26");
      svg.setAttribute("height", "8");
      svg.setAttribute("class", "mlc-swatch");
      const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
      for (const [k, v] of Object.entries({ x1: 0, y1: 4, x2: 26, y2: 4, stroke: color, "stroke-width": 2.5 })) line.setAttribute(k, v);
      if (dash && dash.length) line.setAttribute("stroke-dasharray", dash.join(" "));
      svg.appendChild(line);
      item.appendChild(svg);
    };
    const racers = model.get("racers") || [];
    tasks.forEach((t, k) => { // in a race a task is told by its dash; the colour is the racer's
      const item = div("mlc-item", legend);
      swatch(item, racers.length ? "#444444" : colors[k], dashes[k]);
      item.appendChild(document.createTextNode(t));
    });
    racers.forEach((racer) => {
      const item = div("mlc-item mlc-racer", legend);
      swatch(item, racer.color, []);
      item.appendChild(document.createTextNode(racer.label));
    });
    pins.forEach((pin, k) => {
      if (pin.hidden) return;
      const item = div("mlc-item mlc-pin", legend);
      swatch(item, pin.color || "#555555", []);
      item.appendChild(document.createTextNode(`run ${k + 1}: ${pin.label}`));
    });
    const marks = model.get("markers") || [];
    if (marks.length) div("mlc-item mlc-pin", legend, `┆ ${marks.length} change${marks.length > 1 ? "s" : ""} during the run`);
    el.dataset.overlays = String(pins.filter((p) => !p.hidden).length);
    el.dataset.markers = String(marks.length);
  }

  function sizeStrip() {
    const P = state.pairs.length;
    const rowH = P ? Math.max(8, Math.min(18, Math.floor(110 / P))) : 18;
    const width = Math.max(200, cosBox.clientWidth || 400);
    const height = Math.max(P, 1) * rowH + 4;
    cosCanvas.style.width = `${width}px`;
    cosCanvas.style.height = `${height}px`;
    cosCanvas.width = Math.round(width * devicePixelRatio);
    cosCanvas.height = Math.round(height * devicePixelRatio);
    state.strip = { width, height, rowH };
    const pal = model.get("palette");
    cosScale.innerHTML = "";
    const bar = div("mlc-bar", cosScale);
    bar.style.background = `linear-gradient(to right, ${pal.negative}, ${pal.zero}, ${pal.positive})`;
    div("mlc-barlabel", cosScale, "−1 conflict (orange) · 0 · +1 aligned (blue)");
  }

  function drawStrip() {
    const ctx = cosCanvas.getContext("2d"), s = state.strip, dpr = devicePixelRatio, d = state.data.diag;
    const pal = model.get("palette");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, s.width, s.height);
    const u = state.sharePlot; // a linear axis: its gutter is laid out even before the first data
    const plotLeft = u ? u.bbox.left / dpr : 48, plotWidth = u ? u.bbox.width / dpr : s.width - 50;
    const [x0, x1] = xRange();
    const xpos = (v) => plotLeft + ((v - x0) / (x1 - x0)) * plotWidth;
    ctx.font = state.look.font;
    ctx.textBaseline = "middle";
    state.pairs.forEach((name, p) => {
      const y = 2 + p * s.rowH;
      ctx.fillStyle = "#f7f7f7";
      ctx.fillRect(plotLeft, y, plotWidth, s.rowH - 1);
      const row = d.cos[p] || [];
      for (let i = 0; i < d.x.length; i++) {
        const a = xpos(d.x[i]);
        const b = i + 1 < d.x.length ? xpos(d.x[i + 1]) : a + Math.max(2, (a - xpos(d.x[Math.max(0, i - 1)])) || 2);
        ctx.fillStyle = cosineColor(row[i], pal);
        ctx.fillRect(a, y, Math.max(1, b - a + 0.5), s.rowH - 1);
      }
      ctx.fillStyle = "#222";
      ctx.textAlign = "right";
      if (s.rowH < 11) return;
      // the pair's name fits the gutter: a smaller face first, then shortened names, never cut at the edge
      let px = Math.min(state.look.px, s.rowH), label = name;
      ctx.font = `${px}px ${FACE}`;
      while (ctx.measureText(label).width > plotLeft - 6 && px > 9) { px -= 1; ctx.font = `${px}px ${FACE}`; }
      if (ctx.measureText(label).width > plotLeft - 6) label = name.split("·").map((t) => t.slice(0, 4)).join("·");
      ctx.fillText(label, plotLeft - 4, y + s.rowH / 2);
    });
  }

  function stacked(share, T, sign) {
    const out = [];
    const n = share[0] ? share[0].length : 0;
    const cum = new Array(n).fill(0);
    const layers = [];
    for (let t = 0; t < T; t++) {
      const layer = new Array(n);
      for (let i = 0; i < n; i++) {
        const v = share[t][i];
        cum[i] += sign > 0 ? Math.max(v, 0) : Math.min(v, 0);
        layer[i] = cum[i];
      }
      layers.push(layer);
    }
    for (let t = T - 1; t >= 0; t--) out.push(layers[t]);
    return out;
  }

  function redraw() {
    pending = false;
    if (!state.plots.length) return;
    const T = state.tasks.length, d = state.data, pins = model.get("pinned") || [];
    const tables = [[d.step.x, ...d.step.loss.map((r) => r.map(finite))],
                    [d.val.x, ...d.val.loss.map((r) => r.map(finite))]];
    for (const pin of pins) if (!pin.hidden) tables.push([pin.x, ...pin.val]);
    const joined = uPlot.join(tables);
    state.lossPlot.setData(joined);
    state.weightPlot.setData([d.step.x, ...d.step.w.map((r) => r.map(finite))]);
    // how many train-loss lines hold data (what a browser test counts: R x T in a race)
    el.dataset.lines = String(d.step.loss.filter((r) => r.some((v) => Number.isFinite(v))).length);
    const pos = stacked(d.diag.share, T, 1), neg = stacked(d.diag.share, T, -1);
    state.sharePlot.setData([d.diag.x, ...pos, ...neg]);
    state.normPlot.setData([d.diag.x, ...d.diag.norm.map((r) => r.map((v) => (v > 0 ? v : null)))]);
    drawStrip();
    state.frames += 1;
    el.dataset.frames = String(state.frames);
    el.dataset.rows = String(d.step.x.length);
    el.dataset.lastStep = String(d.step.x.length ? d.step.x[d.step.x.length - 1] : -1);
  }

  function schedule() {
    if (!pending) { pending = true; requestAnimationFrame(redraw); }
  }

  function resize() {
    const w = Math.max(200, lossBox.clientWidth);
    for (const u of state.plots) u.setSize({ width: w, height: u.height });
    sizeStrip();
    schedule();
  }

  model.on("msg:custom", (msg, buffers) => {
    if (msg.kind === "reset") {
      const T = model.get("tasks").length;
      state.R = Math.max(1, (model.get("racers") || []).length); // the rows' shape: one run or a race
      state.data = emptyStreams(T, (T * (T - 1)) / 2, state.R);
      el.dataset.racers = String(state.R);
      state.log = msg.log || {};
      build();
      for (const [stream, cols] of Object.entries(msg.streams)) {
        const k = Object.keys(msg.streams).indexOf(stream);
        appendRows(state, stream, new Float64Array(buffers[k].buffer, buffers[k].byteOffset, buffers[k].byteLength / 8), cols);
      }
      state.ready = true;
      schedule();
    } else if (msg.kind === "append") {
      if (!state.ready) return;
      if (msg.start !== state.data[msg.stream].x.length) {
        state.ready = false;
        model.send({ kind: "hello" });
        return;
      }
      const b = buffers[0];
      appendRows(state, msg.stream, new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8), msg.cols);
      schedule();
    }
  });
  const refresh = () => { title.textContent = model.get("title") || ""; note.textContent = model.get("note") || ""; };
  model.on("change:title", refresh);
  model.on("change:note", refresh);
  model.on("change:markers", () => { drawLegend(); schedule(); });
  model.on("change:pinned", () => build());
  model.on("change:planned_steps", schedule);
  model.on("change:projector", () => build());
  model.on("change:dashes", () => build());
  png.addEventListener("click", () => exportPng());

  function exportPng() {
    // one image of what is on screen: the title and legend as text, every plot and the heat strip
    const box = root.getBoundingClientRect(), scale = 2;
    const out = document.createElement("canvas");
    out.width = Math.round(box.width * scale);
    out.height = Math.round(box.height * scale);
    const ctx = out.getContext("2d");
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.scale(scale, scale);
    ctx.fillStyle = "#222";
    ctx.font = `600 ${state.look.px + 2}px ${FACE}`;
    ctx.textBaseline = "top";
    ctx.fillText(title.textContent, 4, 4);
    ctx.font = state.look.font;
    ctx.fillText(model.get("tasks").join(" · "), 4, state.look.px + 10);
    for (const c of root.querySelectorAll("canvas")) {
      const r = c.getBoundingClientRect();
      ctx.drawImage(c, r.left - box.left, r.top - box.top, r.width, r.height);
    }
    for (const t of root.querySelectorAll(".mlc-ptitle")) {
      const r = t.getBoundingClientRect();
      ctx.fillText(t.textContent, r.left - box.left, r.top - box.top);
    }
    const a = document.createElement("a");
    a.href = out.toDataURL("image/png");
    a.download = "mtl_lab_chart.png";
    el.dataset.exported = String(a.href.length);
    a.click();
  }
  refresh();
  build();
  const observer = new ResizeObserver(() => resize());
  observer.observe(root);
  model.send({ kind: "hello" });
  return () => { observer.disconnect(); for (const u of state.plots) u.destroy(); };
}

export default { render };
