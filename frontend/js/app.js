// The page: a start view (file, link, search, recording, many songs, this browser's history), a job view
// at #/jobs/<id> and a batch view at #/batches/<id>, which a reload or a bookmark resumes. Polling
// follows the API's Retry-After and stops when the job or batch ends.
import { poll, postJson, Problem, request, uploadBatch, uploadFile } from "./api.js";
import { findUpload, keepUpload } from "./audio-store.js";
import { batchFraction, batchStage, renderCounts, renderRows } from "./batch.js";
import { describe, RETRYABLE } from "./errors.js";
import { clock, element, percent, plural } from "./format.js";
import { clearHistory, HISTORY_KEY, readHistory, remember, retitle } from "./history.js";
import { MAX_SECONDS, MIN_SECONDS, startRecording } from "./recorder.js";
import { renderBars, renderTags, unsureNote } from "./summary.js";
import { markPlaying, renderTimeline } from "./timeline.js";
import { drawWaveform } from "./waveform.js";

const $ = (id) => document.getElementById(id);
// A song opened from its batch's view carries the batch's id (the job's own view does not say it:
// whoever is given a song's address is not given its batch).
const JOB_ROUTE = /^#\/jobs\/([0-9a-f]{8,64})(?:\?batch=([0-9A-Za-z]{8,64}))?$/;
const BATCH_ROUTE = /^#\/batches\/([0-9A-Za-z]{8,64})$/;
// Files a folder may hold besides its songs (covers, playlists, notes) are left out by these.
const AUDIO_NAME = /\.(mp3|wav|flac|ogg|oga|opus|m4a|mp4|aac|webm|aif|aiff|au|wma|mka)$/i;
const STAGES = {
  queued: "Waiting for a free worker…", downloading: "Fetching the audio…",
  decoding: "Reading the audio…", analyzing: "Listening…",
};

let limits = { max_upload_mb: 50, max_batch_items: 500 };
let generation = 0;       // bumped on every navigation, so an older poll stops
let lastAttempt = null;   // repeats the last submission for "Try again"
let shown = null;         // { result, cells } of the job on screen
const localFiles = new Map();
let recording = null;     // the microphone recording under way
let batchRows = new Map(); // the rows of the batch on screen, by job id
let jobBatch = null;      // the batch the song on screen was opened from, if any
let jobShown = null;      // the id of the job on screen
let cancelling = false;   // and whether its cancel was asked
const leftOut = new Map(); // batch id -> names of a folder's files that were not audio

// --- Views and navigation.

function showView(name) {
  $("start-view").hidden = name !== "start";
  $("job-view").hidden = name !== "job";
  $("batch-view").hidden = name !== "batch";
}

function route() {
  generation += 1;
  stopPlayback();
  if (recording) recording.cancel();
  const job = location.hash.match(JOB_ROUTE), batch = location.hash.match(BATCH_ROUTE);
  if (job) {
    jobBatch = job[2] || null;
    openJob(job[1]);
  } else if (batch) {
    openBatch(batch[1]);
  } else {
    showView("start");
    renderHistory();
    document.title = "Genre · what is this song made of?";
  }
}

// Shows the start view at once (the hashchange, when there is one, comes later and changes nothing more),
// so the field can take the focus now.
function goToStart(focus = "file") {
  if (location.hash) location.hash = "";
  route();
  $(focus).focus();
}

function resetJobView(title, kind) {
  showView("job");
  shown = null;
  $("job-title").textContent = title;
  $("job-kind").textContent = kind;
  $("job-duration").textContent = "";
  $("job-cached").hidden = true;
  $("job-batch").hidden = true;
  $("job-status").hidden = false;
  $("job-error").hidden = true;
  $("job-result").hidden = true;
  $("job-cancel").hidden = true;
  $("job-cancel").disabled = false;
  cancelling = false;
  setProgress("Starting…", 0);
}

function setProgress(stage, fraction) {
  $("job-stage").textContent = stage;
  $("job-progress").value = fraction;
  $("job-percent").textContent = percent(fraction);
}

// --- Submitting.

const stem = (name) => name.replace(/\.[^.]+$/, "");

async function submitFile(file, kind = "Upload") {
  lastAttempt = () => submitFile(file, kind);
  generation += 1;
  const title = stem(file.name) || "Your file";
  resetJobView(title, kind);
  if (file.size > limits.max_upload_mb * 1e6) {
    showProblem(new Problem("too_large", `The file is ${(file.size / 1e6).toFixed(1)} MB; the limit is ${limits.max_upload_mb} MB.`));
    return;
  }
  setProgress("Uploading…", 0);
  try {
    const job = await uploadFile(file, (fraction) => setProgress(`Uploading… ${percent(fraction)}`, fraction));
    localFiles.set(job.id, file);
    keepUpload(job.id, file);
    remember("job", job.id, title, kind);
    location.hash = `#/jobs/${job.id}`;
  } catch (problem) {
    showProblem(problem);
  }
}

async function submitLink(url, field, title) {
  lastAttempt = () => submitLink(url, null, title);
  const message = $("link-error");
  message.hidden = true;
  field?.removeAttribute("aria-invalid");
  try {
    const { body } = await postJson("api/v1/jobs", { url });
    const source = body.source || {};
    remember("job", body.id, source.title || title || url, source.kind === "youtube" ? "YouTube" : "Link");
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
  pick.addEventListener("click", () => submitLink(candidate.url, null, candidate.title));
  return element("li", {}, pick);
}

// --- Following a job.

async function openJob(id) {
  const mine = generation;
  const isCurrent = () => mine === generation;
  resetJobView("Your song", "");
  jobShown = id;
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
  if (source.title) retitle("job", job.id, source.title);
  // A song of a batch leads back to its batch.
  $("job-batch").hidden = !jobBatch;
  if (jobBatch) $("job-batch").href = `#/batches/${jobBatch}`;
  const { done, total } = job.progress || { done: 0, total: 0 };
  if (job.status === "succeeded") setProgress("Done", 1);
  else if (job.status === "failed") setProgress("Stopped", $("job-progress").value);
  else if (job.stage === "analyzing" && total) {
    setProgress(`Listening: segment ${done} of ${total}`, 0.1 + (0.9 * done) / total);
  } else {
    setProgress(STAGES[job.stage] || "Working…", { downloading: 0.03, decoding: 0.08 }[job.stage] || 0);
  }
  // While it is queued or running it can be stopped (POST .../cancel); it then ends failed, "cancelled".
  $("job-cancel").hidden = !["queued", "running"].includes(job.status);
  if (cancelling && !$("job-cancel").hidden) $("job-stage").textContent = "Cancelling…";
  // Progress went back to the start: say why rather than let the bar jump back unexplained.
  if (job.attempt > 1 && !["succeeded", "failed"].includes(job.status)) {
    $("job-stage").textContent += ` (started again: the worker that had it stopped; attempt ${job.attempt})`;
  }
}

async function cancelJob() {
  const id = jobShown, mine = generation, button = $("job-cancel");
  button.disabled = true;
  cancelling = true;
  $("job-stage").textContent = "Cancelling…";
  try {
    const { body } = await request(`api/v1/jobs/${id}/cancel`, { method: "POST" });
    // A queued job ends at once: say so now rather than at the next poll (which this stops).
    if (body.status === "failed" && mine === generation) {
      generation += 1;
      showStatus(body);
      showProblem(new Problem(body.error.code, body.error.message));
    }
  } catch (problem) {
    // 409: it ended meanwhile, and the poll shows how.
    if (problem.status !== 409 && mine === generation) {
      cancelling = false;
      button.disabled = false;
      $("job-stage").textContent = `Not cancelled: ${describe(problem.code, problem.message).title}.`;
    }
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
  $("retry").onclick = again ? () => lastAttempt() : () => goToStart();
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

// --- Many songs: a batch of files (a folder's audio files among them) or of links.

function isAudio(file) {
  return !file.name.startsWith(".") && (/^(audio|video)\//.test(file.type) || AUDIO_NAME.test(file.name));
}

// A folder's files, its sub-folders' too, with the path inside it (for the order and the left-out list).
async function walk(entry, path = "") {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    return [{ file, path: path + file.name }];
  }
  const reader = entry.createReader(), found = [];
  for (;;) {  // readEntries answers in pieces (100 at a time in Chromium) until an empty one
    const entries = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!entries.length) break;
    for (const child of entries) found.push(...await walk(child, `${path}${entry.name}/`));
  }
  return found;
}

// Files named one by one all go (the service says which are not audio); a folder gives only its audio files.
// Chromium sends a chosen folder's files under their path ("Album/01 Song.mp3"); a copy (of the reference,
// not the bytes) goes under the file's own name, which is the song's title.
const ownName = (file) => new File([file], file.name, { type: file.type, lastModified: file.lastModified });

function fromFolder(found) {
  found.sort((a, b) => a.path.localeCompare(b.path, undefined, { numeric: true }));
  return { files: found.filter((f) => isAudio(f.file)).map((f) => ownName(f.file)),
    skipped: found.filter((f) => !isAudio(f.file)).map((f) => f.path) };
}

async function filesFromDrop(transfer) {
  // The entries must be taken before the drop handler first waits: the transfer empties after it.
  const entries = [...(transfer.items || [])].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry());
  if (!entries.some((entry) => entry && entry.isDirectory)) return { files: [...transfer.files], skipped: [] };
  const files = [], skipped = [];
  for (const entry of entries.filter(Boolean)) {
    if (entry.isFile) {
      files.push((await walk(entry))[0].file);
    } else {
      const folder = fromFolder(await walk(entry));
      files.push(...folder.files);
      skipped.push(...folder.skipped);
    }
  }
  return { files, skipped };
}

function sayBeside(id, field, title, detail) {
  const message = $(id);
  message.replaceChildren(element("strong", {}, title), detail ? ` ${detail}` : "");
  message.hidden = false;
  field?.setAttribute("aria-invalid", "true");
}

function quiet(id, field) {
  $(id).hidden = true;
  field?.removeAttribute("aria-invalid");
}

const megabytes = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

function batchTitle(names) {
  if (names.length === 1) return names[0];
  return `${names[0]} and ${names.length - 1} more`;
}

async function submitBatchFiles(files, skipped = []) {
  quiet("batch-files-error");
  if (!files.length) {
    sayBeside("batch-files-error", null, "No audio files there.",
      skipped.length ? `${plural(skipped.length, "file")} left out, none of them audio (MP3, WAV, FLAC, OGG, M4A…).` : "");
    return;
  }
  const most = limits.max_batch_items || 500;
  if (files.length > most) {
    sayBeside("batch-files-error", null, "Too many songs at once.",
      `That is ${files.length} files; one batch holds at most ${most}. Choose fewer, or a smaller folder.`);
    return;
  }
  const bytes = files.reduce((sum, file) => sum + file.size, 0);
  if (bytes > limits.max_upload_mb * 1e6) {
    sayBeside("batch-files-error", null, "Those files are too large together.",
      `They come to ${megabytes(bytes)}; one batch's upload can be at most ${limits.max_upload_mb} MB. ` +
      "Choose fewer files at a time, or more compressed ones (MP3, say).");
    return;
  }
  lastAttempt = () => submitBatchFiles(files, skipped);
  generation += 1;
  resetBatchView(plural(files.length, "song"));
  const uploading = `Uploading ${plural(files.length, "file")} (${megabytes(bytes)})…`;
  setBatchProgress(uploading, 0);
  try {
    const batch = await uploadBatch(files, (fraction) => setBatchProgress(`${uploading} ${percent(fraction)}`, fraction));
    // The files stay in this tab, so a song opened from the batch can be played.
    for (const item of batch.items || []) if (files[item.position]) localFiles.set(item.id, files[item.position]);
    if (skipped.length) leftOut.set(batch.id, skipped);
    remember("batch", batch.id, batchTitle(files.map((file) => stem(file.name))), "Files");
    location.hash = `#/batches/${batch.id}`;
  } catch (problem) {
    showBatchProblem(problem);
  }
}

async function submitBatchLinks(text) {
  const field = $("urls"), button = $("batch-links-submit");
  quiet("urls-error", field);
  const urls = [...new Set(text.split(/\s+/).filter(Boolean))];
  if (!urls.length) {
    sayBeside("urls-error", field, "No links there.", "Paste one link per line.");
    field.focus();
    return;
  }
  const most = limits.max_batch_items || 500;
  if (urls.length > most) {
    sayBeside("urls-error", field, "Too many links at once.", `That is ${urls.length}; one batch holds at most ${most}.`);
    field.focus();
    return;
  }
  button.disabled = true;
  try {
    const { body } = await postJson("api/v1/batches", { urls });
    remember("batch", body.id, batchTitle(urls), "Links");
    field.value = "";
    location.hash = `#/batches/${body.id}`;
  } catch (problem) {
    const { title, detail } = describe(problem.code, problem.message);
    sayBeside("urls-error", field, title, detail);
    field.focus();
  } finally {
    button.disabled = false;
  }
}

function resetBatchView(title) {
  showView("batch");
  batchRows = new Map();
  $("batch-title").textContent = title;
  $("batch-meta").textContent = "";
  $("batch-status").hidden = false;
  $("batch-error").hidden = true;
  $("batch-note").hidden = true;
  $("batch-playlist-error").hidden = true;
  $("batch-export").hidden = true;
  $("batch-songs").hidden = true;
  $("batch-counts").replaceChildren();
  $("batch-rows").replaceChildren();
  setBatchProgress("Starting…", 0);
}

function setBatchProgress(stage, fraction) {
  const bar = $("batch-progress");
  $("batch-stage").textContent = stage;
  if (fraction === null) {
    bar.removeAttribute("value");  // no figure yet: the bar says "working" without one
    $("batch-percent").textContent = "";
  } else {
    bar.value = fraction;
    $("batch-percent").textContent = percent(fraction);
  }
}

async function openBatch(id) {
  const mine = generation;
  const isCurrent = () => mine === generation;
  resetBatchView("Your songs");
  document.title = "Your songs · Genre";
  $("batch-title").focus({ preventScroll: true });
  const skipped = leftOut.get(id);
  if (skipped) {
    $("batch-note").textContent = `Left out of the folder, not audio: ${skipped.slice(0, 5).join(", ")}` +
      (skipped.length > 5 ? ` and ${skipped.length - 5} more.` : ".");
    $("batch-note").hidden = false;
  }
  try {
    const batch = await poll(`api/v1/batches/${id}`, {
      isCurrent,
      isDone: (body) => body.status === "done",
      onUpdate: showBatch,
      onTrouble: (problem, wait) => {
        $("batch-stage").textContent = `${describe(problem.code).title}. Still trying (next in ${wait} s)…`;
      },
    });
    if (batch) showBatch(batch);
  } catch (problem) {
    if (isCurrent()) {
      lastAttempt = null;
      showBatchProblem(problem);
    }
  }
}

function showBatch(batch) {
  const total = batch.progress.total;
  $("batch-title").textContent = total ? plural(total, "song") : "Your songs";
  document.title = `${$("batch-title").textContent} · Genre`;
  const started = new Date(typeof batch.created_at === "number" ? batch.created_at * 1000 : batch.created_at);
  $("batch-meta").textContent = Number.isNaN(started.getTime()) ? "" : `Started ${started.toLocaleString()}`;
  setBatchProgress(batchStage(batch), batchFraction(batch));
  renderCounts($("batch-counts"), batch.counts);
  const trouble = $("batch-playlist-error");
  trouble.hidden = !batch.error;
  if (batch.error) {
    const { title, particulars } = describe(batch.error.code, batch.error.message);
    trouble.replaceChildren(element("strong", {}, `The playlist couldn't be listed: ${title.toLowerCase()}.`),
      particulars ? ` ${particulars}` : "");
  }
  $("export-csv").href = `api/v1/batches/${batch.id}/export?format=csv`;
  $("export-json").href = `api/v1/batches/${batch.id}/export?format=json`;
  $("batch-export-note").textContent = batch.status === "done"
    ? "One row per song: its top five genres and tags, or why it failed."
    : "The songs still running are in the file too, without their genres yet.";
  $("batch-export").hidden = false;
  $("batch-songs").hidden = !batch.items.length;
  renderRows($("batch-rows"), batch.items, batchRows, batch.id);
}

function showBatchProblem(problem) {
  const { title, detail } = describe(problem.code, problem.message);
  $("batch-status").hidden = true;
  $("batch-error").hidden = false;
  $("batch-error-title").textContent = title;
  $("batch-error-detail").textContent = detail;
  const again = RETRYABLE.has(problem.code) && lastAttempt;
  $("batch-retry").textContent = again ? "Try again" : "Choose other songs";
  $("batch-retry").onclick = again ? () => lastAttempt() : () => goToStart("batch-files");
}

// --- This browser's history (localStorage; nothing of it is sent to the service).

function ago(at) {
  const minutes = Math.round((Date.now() - at) / 60000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 24 * 60) return `${Math.round(minutes / 60)} h ago`;
  return new Date(at).toLocaleDateString();
}

function renderHistory() {
  const entries = readHistory();
  $("history").hidden = !entries.length;
  $("history-list").replaceChildren(...entries.map((entry) => element("li", { class: "history-entry" },
    element("a", { href: entry.type === "batch" ? `#/batches/${entry.id}` : `#/jobs/${entry.id}` }, entry.title || "Untitled"),
    element("span", { class: "history-kind" }, entry.type === "batch" ? `Batch · ${entry.kind || ""}` : entry.kind || "Song"),
    element("time", { datetime: new Date(entry.at).toISOString(), title: new Date(entry.at).toLocaleString() }, ago(entry.at)))));
}

// --- Recording from the microphone: 10 to 30 s, then analysed like an upload.

function setRecording(on) {
  $("record").hidden = on;
  $("record-stop").hidden = !on;
  $("record-cancel").hidden = !on;
  $("record-live").hidden = !on;
  if (!on) {
    $("record").disabled = false;
    $("record-status").textContent = "";
  }
}

function recordTick(seconds) {
  const stop = $("record-stop");
  $("record-progress").value = seconds;
  $("record-clock").textContent = `${clock(Math.floor(seconds))} / ${clock(MAX_SECONDS)}`;
  const ready = seconds >= MIN_SECONDS;
  if (stop.disabled === ready) stop.disabled = !ready;
  $("record-status").textContent = ready
    ? `Recording. Stop when you like; it stops by itself at ${MAX_SECONDS} s.`
    : `Recording… at least ${MIN_SECONDS} s are needed (${Math.ceil(MIN_SECONDS - seconds)} s to go).`;
}

async function record() {
  quiet("record-error");
  $("record").disabled = true;
  let mine;
  try {
    mine = await startRecording({ onTick: recordTick, onLevel: (level) => { $("record-level").value = level; } });
  } catch (problem) {
    setRecording(false);
    sayBeside("record-error", null, `${problem.title || "Recording didn't work"}.`, problem.detail || problem.message);
    return;
  }
  if ($("start-view").hidden) {  // the listener went elsewhere while the browser asked for the microphone
    mine.cancel();
    setRecording(false);
    return;
  }
  recording = mine;
  setRecording(true);
  $("record-stop").disabled = true;
  recordTick(0);
  $("record-cancel").focus();
  try {
    const file = await mine.finished;
    if (recording === mine) { recording = null; setRecording(false); }
    if (file) submitFile(file, "Recording");
  } catch (problem) {
    if (recording === mine) { recording = null; setRecording(false); }
    sayBeside("record-error", null, `${problem.title || "Recording didn't work"}.`, problem.detail || problem.message);
  }
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

  const many = $("batch-files"), folder = $("batch-folder"), manyZone = $("batch-drop");
  many.addEventListener("change", () => { if (many.files.length) submitBatchFiles([...many.files]); many.value = ""; });
  folder.addEventListener("change", () => {
    const found = [...folder.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
    folder.value = "";
    if (found.length) { const { files, skipped } = fromFolder(found); submitBatchFiles(files, skipped); }
  });
  $("choose-folder").addEventListener("click", () => folder.click());
  for (const type of ["dragenter", "dragover"]) {
    manyZone.addEventListener(type, (event) => { event.preventDefault(); manyZone.classList.add("dragging"); });
  }
  manyZone.addEventListener("dragleave", () => manyZone.classList.remove("dragging"));
  manyZone.addEventListener("drop", async (event) => {
    event.preventDefault();
    manyZone.classList.remove("dragging");
    try {
      const { files, skipped } = await filesFromDrop(event.dataTransfer);
      submitBatchFiles(files, skipped);
    } catch {
      sayBeside("batch-files-error", null, "Those files couldn't be read.", "Try choosing them instead.");
    }
  });
  $("batch-links").addEventListener("submit", (event) => {
    event.preventDefault();
    submitBatchLinks($("urls").value);
  });

  $("job-cancel").addEventListener("click", cancelJob);

  $("record").addEventListener("click", record);
  $("record-stop").addEventListener("click", () => recording?.stop());
  $("record-cancel").addEventListener("click", () => {
    recording?.cancel();
    $("record").focus();
  });

  $("clear-history").addEventListener("click", () => {
    clearHistory();
    renderHistory();
    $("file").focus();
  });
  // Another tab of this page added to (or cleared) the history.
  window.addEventListener("storage", (event) => { if (event.key === HISTORY_KEY || event.key === null) renderHistory(); });

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
    limits = { ...limits, ...(await request("api/v1/limits")).body };
    $("upload-limit").textContent = String(limits.max_upload_mb);
    $("batch-limit-songs").textContent = String(limits.max_batch_items);
    $("batch-limit-mb").textContent = String(limits.max_upload_mb);
  } catch {
    // The page still works; the API then refuses an oversized file itself.
  }
}

wire();
loadLimits();
route();
