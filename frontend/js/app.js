// The page: a start view (file, link or search) and a job view at #/jobs/<id>, which a reload or a
// bookmark resumes. Polling follows the API's Retry-After and stops when the job ends.
import { poll, postJson, Problem, request, uploadFile } from "./api.js";
import { findUpload, keepUpload } from "./audio-store.js";
import { describe, RETRYABLE } from "./errors.js";
import { clock, element, percent } from "./format.js";
import { renderBars, renderTags, unsureNote } from "./summary.js";
import { markPlaying, renderTimeline } from "./timeline.js";
import { drawWaveform } from "./waveform.js";

const $ = (id) => document.getElementById(id);
const JOB_ROUTE = /^#\/jobs\/([0-9a-f]{8,64})$/;
const STAGES = {
  queued: "Waiting for a free worker…", downloading: "Fetching the audio…",
  decoding: "Reading the audio…", analyzing: "Listening…",
};

let limits = { max_upload_mb: 50 };
let generation = 0;       // bumped on every navigation, so an older poll stops
let lastAttempt = null;   // repeats the last submission for "Try again"
let shown = null;         // { result, cells } of the job on screen
const localFiles = new Map();

// --- Views and navigation.

function showView(name) {
  $("start-view").hidden = name !== "start";
  $("job-view").hidden = name !== "job";
}

function route() {
  generation += 1;
  stopPlayback();
  const match = location.hash.match(JOB_ROUTE);
  if (match) {
    openJob(match[1]);
  } else {
    showView("start");
    document.title = "Genre · what is this song made of?";
  }
}

// A failed upload never left the start address, so setting an empty hash would change nothing.
function goToStart() {
  if (location.hash) location.hash = "";
  else route();
  $("file").focus();
}

function resetJobView(title, kind) {
  showView("job");
  shown = null;
  $("job-title").textContent = title;
  $("job-kind").textContent = kind;
  $("job-duration").textContent = "";
  $("job-cached").hidden = true;
  $("job-status").hidden = false;
  $("job-error").hidden = true;
  $("job-result").hidden = true;
  setProgress("Starting…", 0);
}

function setProgress(stage, fraction) {
  $("job-stage").textContent = stage;
  $("job-progress").value = fraction;
  $("job-percent").textContent = percent(fraction);
}

// --- Submitting.

async function submitFile(file) {
  lastAttempt = () => submitFile(file);
  generation += 1;
  resetJobView(file.name.replace(/\.[^.]+$/, "") || "Your file", "Upload");
  if (file.size > limits.max_upload_mb * 1e6) {
    showProblem(new Problem("too_large", `The file is ${(file.size / 1e6).toFixed(1)} MB; the limit is ${limits.max_upload_mb} MB.`));
    return;
  }
  setProgress("Uploading…", 0);
  try {
    const job = await uploadFile(file, (fraction) => setProgress(`Uploading… ${percent(fraction)}`, fraction));
    localFiles.set(job.id, file);
    keepUpload(job.id, file);
    location.hash = `#/jobs/${job.id}`;
  } catch (problem) {
    showProblem(problem);
  }
}

async function submitLink(url, field) {
  lastAttempt = () => submitLink(url);
  const message = $("link-error");
  message.hidden = true;
  field?.removeAttribute("aria-invalid");
  try {
    const { body } = await postJson("api/v1/jobs", { url });
    location.hash = `#/jobs/${body.id}`;
  } catch (problem) {
    if (!field) { resetJobView(url, "Link"); showProblem(problem); return; }
    const { title, detail } = describe(problem.code, problem.message);
    message.replaceChildren(element("strong", {}, title), ` ${detail}`);
    message.hidden = false;
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
}

async function search(query) {
  const status = $("search-status");
  const list = $("candidates");
  const mine = ++generation;
  list.replaceChildren();
  status.classList.remove("problem");
  status.textContent = "Searching YouTube…";
  try {
    const { body } = await postJson("api/v1/searches", { q: query, limit: 6 });
    const done = await poll(`api/v1/searches/${body.id}`, { isCurrent: () => mine === generation });
    if (!done) return;
    if (done.status === "failed") throw new Problem(done.error.code, done.error.message);
    status.textContent = done.candidates.length
      ? `${done.candidates.length} results. Pick one to analyse it.` : "Nothing found. Try other words.";
    list.replaceChildren(...done.candidates.map(candidateItem));
  } catch (problem) {
    const { title, detail } = describe(problem.code, problem.message);
    status.classList.add("problem");
    status.textContent = `${title}. ${detail}`;
  }
}

function candidateItem(candidate) {
  const thumb = element("img", { src: candidate.thumbnail || "", alt: "", loading: "lazy",
    referrerpolicy: "no-referrer", width: "160", height: "90" });
  // Thumbnails come from YouTube's servers; when they cannot be reached a plain tile stands in.
  thumb.addEventListener("error", () => thumb.replaceWith(element("span", { class: "thumb-missing", "aria-hidden": "true" })));
  if (!candidate.thumbnail) thumb.dispatchEvent(new Event("error"));
  const pick = element("button", { type: "button", class: "candidate",
    "aria-label": `Analyse ${candidate.title} by ${candidate.channel || "unknown channel"}` },
    element("span", { class: "thumb" }, thumb, candidate.duration_s ? element("span", { class: "duration" }, clock(candidate.duration_s)) : null),
    element("span", { class: "candidate-text" },
      element("span", { class: "candidate-title" }, candidate.title),
      element("span", { class: "candidate-channel" }, candidate.channel || "")));
  pick.addEventListener("click", () => submitLink(candidate.url));
  return element("li", {}, pick);
}

// --- Following a job.

async function openJob(id) {
  const mine = generation;
  const isCurrent = () => mine === generation;
  resetJobView("Your song", "");
  $("job-title").focus({ preventScroll: true });
  try {
    const job = await poll(`api/v1/jobs/${id}`, {
      isCurrent,
      onUpdate: showStatus,
      onTrouble: (problem, wait) => {
        $("job-stage").textContent = `${describe(problem.code).title}. Still trying (next in ${wait} s)…`;
      },
    });
    if (!job) return;
    showStatus(job);
    if (job.status === "failed") showProblem(new Problem(job.error.code, job.error.message));
    else await showResult(job, isCurrent);
  } catch (problem) {
    if (isCurrent()) showProblem(problem);
  }
}

function showStatus(job) {
  const source = job.source || {};
  $("job-title").textContent = source.title || source.url || "Your song";
  document.title = `${$("job-title").textContent} · Genre`;
  $("job-kind").textContent = { upload: "Upload", youtube: "YouTube", url: "Link" }[source.kind] || "";
  $("job-duration").textContent = source.duration_s ? clock(source.duration_s) : "";
  $("job-cached").hidden = !job.cached;
  const { done, total } = job.progress || { done: 0, total: 0 };
  if (job.status === "succeeded") setProgress("Done", 1);
  else if (job.status === "failed") setProgress("Stopped", $("job-progress").value);
  else if (job.stage === "analyzing" && total) {
    setProgress(`Listening: segment ${done} of ${total}`, 0.1 + (0.9 * done) / total);
  } else {
    setProgress(STAGES[job.stage] || "Working…", { downloading: 0.03, decoding: 0.08 }[job.stage] || 0);
  }
  // Progress went back to the start: say why rather than let the bar jump back unexplained.
  if (job.attempt > 1 && !["succeeded", "failed"].includes(job.status)) {
    $("job-stage").textContent += ` (started again: the worker that had it stopped; attempt ${job.attempt})`;
  }
}

function showProblem(problem) {
  const { title, detail } = describe(problem.code, problem.message);
  $("job-status").hidden = true;
  $("job-error").hidden = false;
  $("error-title").textContent = title;
  $("error-detail").textContent = detail;
  const again = RETRYABLE.has(problem.code) && lastAttempt;
  $("retry").textContent = again ? "Try again" : "Choose another song";
  $("retry").onclick = again ? () => lastAttempt() : goToStart;
}

async function showResult(job, isCurrent) {
  const result = job.result;
  $("job-status").hidden = true;
  $("job-result").hidden = false;
  renderBars($("top5"), result.top5);
  const note = unsureNote(result);
  $("unsure").textContent = note;
  $("unsure").hidden = !note;
  const cells = renderTimeline({ container: $("timeline"), tooltip: $("tooltip"), legend: $("legend") },
    result.segments, (segment) => seek(segment.start, true));
  shown = { result, cells };
  drawWaveform($("waveform"), result);
  $("axis-end").textContent = clock(result.duration_s);
  renderTags($("tags"), result.tags);
  const model = result.model;
  $("model-line").textContent = `${model.name} · version ${model.version} · ${model.precision} · ` +
    `${result.segments.length} segments of ${result.segment_seconds.toFixed(1)} s`;
  await preparePlayback(job, isCurrent);
}

// --- Playback (uploads only: the file is still in this browser; links play on their own site).

async function preparePlayback(job, isCurrent) {
  const note = $("playback-note");
  const file = localFiles.get(job.id) || (job.source.kind === "upload" ? await findUpload(job.id) : null);
  if (!isCurrent()) return;
  $("player").hidden = !file;
  note.hidden = Boolean(file);
  if (file) {
    $("audio").src = URL.createObjectURL(file);
  } else if (job.source.url) {
    note.replaceChildren("Playback is for uploaded files. ",
      element("a", { href: job.source.url, target: "_blank", rel: "noopener noreferrer" }, "Listen on the original site"), ".");
  } else {
    note.textContent = "Playback is available in the browser that uploaded the file.";
  }
}

function seek(seconds, play = false) {
  const audio = $("audio");
  if ($("player").hidden) return;
  audio.currentTime = seconds;
  if (play) audio.play();
  followPlayhead();
}

function stopPlayback() {
  const audio = $("audio");
  audio.pause();
  if (audio.src) URL.revokeObjectURL(audio.src);
  audio.removeAttribute("src");
  $("playhead").hidden = true;
}

function followPlayhead() {
  if (!shown) return;
  const audio = $("audio");
  const fraction = Math.min(audio.currentTime / shown.result.duration_s, 1);
  $("playhead").hidden = false;
  $("playhead").style.left = `${fraction * 100}%`;
  $("clock").textContent = `${clock(audio.currentTime)} / ${clock(shown.result.duration_s)}`;
  markPlaying(shown.cells, shown.result.segments, audio.currentTime);
  drawWaveform($("waveform"), shown.result, fraction);
  if (!audio.paused) requestAnimationFrame(followPlayhead);
}

// --- Wiring.

function wire() {
  const fileInput = $("file"), zone = $("drop-zone");
  fileInput.addEventListener("change", () => { if (fileInput.files[0]) submitFile(fileInput.files[0]); fileInput.value = ""; });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const file = event.dataTransfer.files[0];
    if (file) submitFile(file);
  });

  $("link-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitLink($("url").value.trim(), $("url"));
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search($("q").value.trim());
  });

  const audio = $("audio"), play = $("play");
  play.addEventListener("click", () => (audio.paused ? audio.play() : audio.pause()));
  audio.addEventListener("play", () => { play.textContent = "Pause"; play.setAttribute("aria-label", "Pause"); followPlayhead(); });
  audio.addEventListener("pause", () => { play.textContent = "Play"; play.setAttribute("aria-label", "Play"); });
  audio.addEventListener("seeked", followPlayhead);
  $("waveform").addEventListener("click", (event) => {
    if (!shown) return;
    const box = event.currentTarget.getBoundingClientRect();
    seek(((event.clientX - box.left) / box.width) * shown.result.duration_s, true);
  });
  new ResizeObserver(() => {
    if (shown) drawWaveform($("waveform"), shown.result, audio.src ? audio.currentTime / shown.result.duration_s : 0);
  }).observe($("track"));

  window.addEventListener("hashchange", route);
}

async function loadLimits() {
  try {
    limits = (await request("api/v1/limits")).body;
    $("upload-limit").textContent = String(limits.max_upload_mb);
  } catch {
    // The page still works; the API then refuses an oversized file itself.
  }
}

wire();
loadLimits();
route();
