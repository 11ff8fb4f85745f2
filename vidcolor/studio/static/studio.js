// vidcolor studio: the page. No build step, no framework: the server does the colour, this file
// only shows frames, collects hints and references, and drives the jobs.
"use strict";

const TOKEN = document.body.dataset.token;
const $ = (id) => document.getElementById(id);
const state = {
  project: null, index: 0, view: "choices", strokes: {}, references: new Set(),
  version: 0, jobSerial: 0, shownPreview: 0, drawing: null, coverage: null,
};

function url(path, params = {}) {
  const q = new URLSearchParams({ ...params, token: TOKEN });
  return `${path}?${q}`;
}

async function api(path, options = {}) {
  const headers = { "X-Vidcolor-Token": TOKEN, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  let body = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) body = await response.json();
  if (!response.ok && response.status !== 409) {
    throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  }
  return { status: response.status, body };
}

function say(text, ok = false) {
  const m = $("message");
  m.textContent = text;
  m.className = ok ? "ok" : "";
}

function isFilm() { return state.project && state.project.kind === "film"; }
function frameCount() { return state.project ? state.project.scan.frames : 0; }

// -- the project -------------------------------------------------------------------------------
async function loadProject() {
  const { body } = await api("/api/project");
  const first = state.project === null;
  state.project = body;
  state.strokes = {};
  for (const [k, v] of Object.entries(body.choices.hints)) state.strokes[k] = v;
  state.references = new Set(body.choices.references);
  $("names").textContent = body.names.length === 1 ? body.names[0] : `${body.names.length} photos`;
  $("outputs").textContent = body.outputs.slice(0, 3).join(", ") + (body.outputs.length > 3 ? ", …" : "");
  $("folder").textContent = body.choices.folder;
  document.querySelectorAll(".film-only").forEach((el) => { el.hidden = body.kind !== "film"; });
  const scan = body.scan;
  $("scan").textContent = scan.error ? `scan stopped: ${scan.error}` :
    scan.done ? `${scan.frames} ${isFilm() ? "frames" : "photos"}` +
      (isFilm() ? `, ${scan.shot_starts.length} shot${scan.shot_starts.length === 1 ? "" : "s"}` : "") :
    `scanning… ${scan.frames}${scan.expected ? " / ~" + scan.expected : ""} frames`;
  $("scan").dataset.done = scan.done ? "1" : "0";
  $("scrub").max = Math.max(0, frameCount() - 1);
  $("frame").max = Math.max(0, frameCount() - 1);
  if (first) {
    for (const name of body.models) {
      const option = document.createElement("option");
      option.value = option.textContent = name;
      $("model").append(option);
    }
    $("model").value = body.model;
    $("render-factor").value = body.settings.render_factor ?? "";
    $("strength").value = body.settings.colour_strength;
    $("strength-value").textContent = Number(body.settings.colour_strength).toFixed(2);
    if (frameCount() > 0) showFrame(0);
  }
  drawShots();
  showJob(body.job);
  if (!scan.done) setTimeout(loadProject, 1000);
  else if (isFilm()) loadCoverage();
}

// -- frames ------------------------------------------------------------------------------------
function showFrame(index) {
  const n = frameCount();
  if (n === 0) return;
  index = Math.max(0, Math.min(n - 1, index));
  state.index = index;
  $("scrub").value = index;
  $("frame").value = index;
  const img = $("view");
  const view = state.view === "compare" ? "choices" : state.view;
  img.src = url(`/api/frame/${index}`, { view, v: state.version });
  $("compare-pane").hidden = state.view !== "compare";
  if (state.view === "compare") $("view-auto").src = url(`/api/frame/${index}`, { view: "auto", v: state.version });
  const times = state.project.scan.times;
  const info = [];
  if (isFilm() && times) info.push(`${(times[index] ?? 0).toFixed(2)} s`);
  if (!isFilm()) info.push(state.project.names[index]);
  if (state.references.has(index)) info.push("reference");
  if ((state.strokes[index] || []).length) info.push(`${state.strokes[index].length} hint stroke(s)`);
  $("frame-info").textContent = info.join(" · ");
  $("reference-state").textContent = state.references.has(index) ?
    "This frame's colour is your reference." : "This frame has no reference.";
  document.querySelectorAll(".shot").forEach((el) => {
    el.classList.toggle("current", Number(el.dataset.start) <= index && index <= Number(el.dataset.end));
  });
}

$("view").addEventListener("load", () => {
  const img = $("view"), canvas = $("paint");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  img.dataset.loaded = img.src;
  drawStrokes();
});
$("view").addEventListener("error", () => say("this frame could not be shown"));

function drawStrokes() {
  const canvas = $("paint"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!$("show-strokes").checked || state.view === "grey") return;
  const strokes = (state.strokes[state.index] || []).concat(state.drawing ? [state.drawing] : []);
  for (const s of strokes) {
    ctx.fillStyle = s.colour;
    ctx.strokeStyle = s.colour;
    ctx.lineWidth = 2 * s.radius;
    ctx.lineCap = "round";
    ctx.beginPath();
    s.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (s.points.length > 1) ctx.stroke();
    for (const [x, y] of s.points) {
      ctx.beginPath();
      ctx.arc(x, y, s.radius + 1, 0, 2 * Math.PI);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(x, y, s.radius, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.lineWidth = 2 * s.radius;
    ctx.strokeStyle = s.colour;
  }
}

// -- painting hints ----------------------------------------------------------------------------
function picturePoint(event) {
  const canvas = $("paint"), box = canvas.getBoundingClientRect();
  const x = Math.round(((event.clientX - box.left) / box.width) * canvas.width);
  const y = Math.round(((event.clientY - box.top) / box.height) * canvas.height);
  return [Math.max(0, Math.min(canvas.width - 1, x)), Math.max(0, Math.min(canvas.height - 1, y))];
}

$("paint").addEventListener("pointerdown", (event) => {
  if (!state.project.takes_hints) { say(`model ${state.project.model} takes no colour hints`); return; }
  $("paint").setPointerCapture(event.pointerId);
  state.drawing = { colour: $("colour").value, radius: Number($("radius").value), points: [picturePoint(event)] };
  drawStrokes();
});
$("paint").addEventListener("pointermove", (event) => {
  if (!state.drawing) return;
  const p = picturePoint(event), last = state.drawing.points[state.drawing.points.length - 1];
  if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= Math.max(2, state.drawing.radius)) {
    state.drawing.points.push(p);
    drawStrokes();
  }
});
$("paint").addEventListener("pointerup", async () => {
  if (!state.drawing) return;
  const stroke = state.drawing;
  state.drawing = null;
  const list = (state.strokes[state.index] || []).concat([stroke]);
  await saveHints(state.index, list);
});

async function saveHints(index, list) {
  try {
    const { body } = await api(`/api/hints/${index}`, {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(list),
    });
    state.strokes = body.hints;
    state.version += 1;
    if (state.view === "grey" || state.view === "auto") setView("choices");
    showFrame(index);
    say(list.length ? "hints saved" : "hints cleared", true);
    if (isFilm()) loadCoverage();
  } catch (err) {
    say(err.message);
    drawStrokes();
  }
}

$("undo").addEventListener("click", () => {
  const list = (state.strokes[state.index] || []).slice(0, -1);
  saveHints(state.index, list);
});
$("clear").addEventListener("click", () => saveHints(state.index, []));
$("show-strokes").addEventListener("change", drawStrokes);
$("radius").addEventListener("input", () => { $("radius-value").textContent = $("radius").value; });

// Colours from any picture on this computer (read here; nothing is sent to the server).
$("palette-file").addEventListener("change", () => {
  const file = $("palette-file").files[0];
  if (!file) return;
  const img = new Image();
  img.onload = () => {
    const canvas = $("palette"), scale = Math.min(1, 268 / img.width);
    canvas.width = Math.round(img.width * scale);
    canvas.height = Math.round(img.height * scale);
    canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
    canvas.hidden = false;
    URL.revokeObjectURL(img.src);
  };
  img.src = URL.createObjectURL(file);
});
$("palette").addEventListener("click", (event) => {
  const canvas = $("palette"), box = canvas.getBoundingClientRect();
  const x = Math.floor(((event.clientX - box.left) / box.width) * canvas.width);
  const y = Math.floor(((event.clientY - box.top) / box.height) * canvas.height);
  const [r, g, b] = canvas.getContext("2d").getImageData(x, y, 1, 1).data;
  $("colour").value = "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
});

// -- views and navigation ----------------------------------------------------------------------
function setView(view) {
  state.view = view;
  document.querySelectorAll("#views button").forEach((b) => b.classList.toggle("on", b.dataset.view === view));
  showFrame(state.index);
}
document.querySelectorAll("#views button").forEach((b) => b.addEventListener("click", () => setView(b.dataset.view)));
$("scrub").addEventListener("input", () => showFrame(Number($("scrub").value)));
$("frame").addEventListener("change", () => showFrame(Number($("frame").value)));
$("prev").addEventListener("click", () => showFrame(state.index - 1));
$("next").addEventListener("click", () => showFrame(state.index + 1));
document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT") return;
  if (event.key === "ArrowLeft") showFrame(state.index - 1);
  if (event.key === "ArrowRight") showFrame(state.index + 1);
});

function drawShots() {
  const box = $("shots");
  const scan = state.project.scan;
  const starts = isFilm() ? scan.shot_starts : [...Array(scan.frames).keys()];
  const drawn = `${starts.length}/${scan.frames}`;
  if (box.dataset.drawn === drawn) return;  // redrawn as the scan finds shots and frames
  box.dataset.drawn = drawn;
  box.textContent = "";
  starts.forEach((start, s) => {
    const end = (s + 1 < starts.length ? starts[s + 1] : scan.frames) - 1;
    const el = document.createElement("div");
    el.className = "shot";
    el.dataset.start = start;
    el.dataset.end = end;
    const img = document.createElement("img");
    img.loading = "lazy";
    img.src = url(`/api/frame/${start}`, { view: "grey" });
    const label = document.createElement("div");
    label.className = "label";
    label.textContent = isFilm() ? `shot ${s + 1} · ${start}–${end}` : state.project.names[s];
    const cover = document.createElement("div");
    cover.className = "cover";
    el.append(img, cover, label);
    el.addEventListener("click", () => showFrame(start));
    box.append(el);
  });
  paintCoverage();
  showFrame(state.index);
}

async function loadCoverage() {
  const { body } = await api("/api/coverage");
  state.coverage = body;
  paintCoverage();
  const list = $("suggestions");
  list.textContent = "";
  for (const s of body.suggestions) {
    const li = document.createElement("li");
    li.textContent = `frame ${s.frame}: ${s.why} (${s.frames_gained} frames)`;
    li.addEventListener("click", () => showFrame(s.frame));
    list.append(li);
  }
  if (!body.suggestions.length) list.innerHTML = "<li>Every shot is covered.</li>";
}

function paintCoverage() {
  if (!state.coverage) return;
  const cover = state.coverage.cover;
  document.querySelectorAll(".shot").forEach((el) => {
    const start = Number(el.dataset.start), end = Number(el.dataset.end), bar = el.querySelector(".cover");
    bar.textContent = "";
    const parts = Math.min(24, end - start + 1);
    for (let k = 0; k < parts; k++) {
      const i = start + Math.floor(((end - start + 1) * k) / parts);
      const c = cover[i] ?? 0, span = document.createElement("span");
      span.style.background = `hsl(${Math.round(c * 120)}, 60%, ${c > 0 ? 45 : 25}%)`;
      span.title = `frame ${i}: ${(c * 100).toFixed(0)}% carried`;
      bar.append(span);
    }
  });
}

// -- references --------------------------------------------------------------------------------
async function changeReference(path, options, done) {
  try {
    const { body } = await api(path, options);
    state.references = new Set(body.references);
    state.version += 1;
    showFrame(state.index);
    loadCoverage();
    say(done, true);
  } catch (err) {
    say(err.message);
  }
}
$("reference-file").addEventListener("change", () => {
  const file = $("reference-file").files[0];
  if (!file) return;
  changeReference(`/api/reference/${state.index}`, { method: "PUT", body: file }, `frame ${state.index}: reference set`);
  $("reference-file").value = "";
});
$("promote").addEventListener("click", () =>
  changeReference(`/api/reference/${state.index}/promote`, { method: "POST" }, `frame ${state.index}: this view is its reference`));
$("drop-reference").addEventListener("click", () =>
  changeReference(`/api/reference/${state.index}`, { method: "DELETE" }, `frame ${state.index}: reference removed`));

// -- settings ----------------------------------------------------------------------------------
async function changeSettings() {
  const rf = $("render-factor").value;
  const doc = {
    model: $("model").value, render_factor: rf === "" ? null : Number(rf), colour_strength: Number($("strength").value),
  };
  try {
    const { body } = await api("/api/settings", {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(doc),
    });
    state.project.model = body.model;
    state.project.takes_hints = body.takes_hints;
    state.version += 1;
    showFrame(state.index);
    say("settings changed", true);
  } catch (err) {
    say(err.message);
  }
}
$("model").addEventListener("change", changeSettings);
$("render-factor").addEventListener("change", changeSettings);
$("strength").addEventListener("change", changeSettings);
$("strength").addEventListener("input", () => { $("strength-value").textContent = Number($("strength").value).toFixed(2); });

// -- jobs --------------------------------------------------------------------------------------
function showJob(job) {
  const running = job.state === "running";
  $("render").disabled = running;
  $("preview").disabled = running;
  $("cancel").disabled = !running;
  const p = $("progress");
  p.max = job.total || 1;
  p.value = job.state === "done" ? p.max : job.done;
  let text = "";
  if (running) {
    text = `${job.kind}: ${job.done}${job.total ? " / " + job.total : ""} frames, ${job.fps.toFixed(1)} fps`;
    if (job.seconds_left !== null) text += `, ${Math.ceil(job.seconds_left)} s left`;
  } else if (job.state !== "idle") {
    text = `${job.kind} ${job.state}: ${job.message}`;
  }
  $("job").textContent = text;
  $("job").dataset.state = job.state;
  $("job").dataset.serial = job.serial;
  if (job.kind === "preview" && job.state === "done" && state.shownPreview !== job.serial) {
    state.shownPreview = job.serial;
    const video = $("preview-video");
    video.src = url("/api/preview.mp4", { v: job.serial });
    video.hidden = false;
    video.play().catch(() => {});
  }
  if (running) setTimeout(pollJob, 500);
}

async function pollJob() {
  const { body } = await api("/api/job");
  showJob(body);
}

async function startJob(path, doc) {
  try {
    let { status, body } = await api(path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(doc),
    });
    if (status === 409 && body.error && body.error.includes("already exists")) {
      if (!window.confirm(body.error.replace("; confirm to replace it", "") + ". Replace it?")) return;
      ({ status, body } = await api(path, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...doc, overwrite: true }),
      }));
    }
    if (body.error) say(body.error);
    else if (!body.started) say("a job is already running: it is shown below");
    if (body.job) showJob(body.job);
  } catch (err) {
    say(err.message);
  }
}
$("render").addEventListener("click", () => startJob("/api/render", {}));
$("preview").addEventListener("click", () =>
  startJob("/api/preview", { start: state.index, seconds: Number($("preview-seconds").value) }));
$("cancel").addEventListener("click", async () => { await api("/api/cancel", { method: "POST" }); pollJob(); });

loadProject().catch((err) => say(err.message));
