// Talks to the JSON API. Every failure becomes a Problem with the API's error code, so the page can
// put it in a listener's words (see errors.js).

import { askForKey, authHeaders } from "./apikey.js";

export class Problem extends Error {
  constructor(code, message, { status = 0, retryAfter = 0 } = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

const seconds = (retryAfter) => Number(retryAfter) || 0;

function problemFrom(status, body, retryAfter) {
  const error = body && body.error;
  return new Problem(error ? error.code : `http_${status}`, error ? error.message : `The server answered ${status}.`,
    { status, retryAfter });
}

async function send(path, options) {
  for (;;) {
    const sent = { headers: { Accept: "application/json" }, ...options };
    let response;
    try {
      response = await fetch(path, { ...sent, headers: { ...sent.headers, ...authHeaders() } });
    } catch {
      throw new Problem("offline", "The service could not be reached.");
    }
    // The service wants a (valid) API key: ask for one, and send again once it is given.
    if (response.status !== 401 || !(await askForKey(Boolean(authHeaders().Authorization)))) return response;
  }
}

async function answer(response) {
  const body = await response.json().catch(() => null);
  const retryAfter = seconds(response.headers.get("Retry-After"));
  if (!response.ok) throw problemFrom(response.status, body, retryAfter);
  return { body, retryAfter };
}

export async function request(path, options = {}) {
  return answer(await send(path, options));
}

// Views that came with an ETag (a finished job's, which never changes), by path, the latest few: asked for
// again, the page sends If-None-Match, and a 304 (no body) means the kept view is still the view.
const kept = new Map();
const KEEP = 20;

async function requestKept(path) {
  const mine = kept.get(path);
  const response = await send(path, { headers: { Accept: "application/json", ...(mine ? { "If-None-Match": mine.etag } : {}) } });
  if (response.status === 304 && mine) return { body: mine.body, retryAfter: 0 };
  const answered = await answer(response);
  const etag = response.headers.get("ETag");
  kept.delete(path);
  if (etag) {
    kept.set(path, { etag, body: answered.body });
    if (kept.size > KEEP) kept.delete(kept.keys().next().value);
  }
  return answered;
}

export const postJson = (path, data) =>
  request(path, { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(data) });

// fetch() cannot report upload progress, XMLHttpRequest can. Sends a form (field `file`, once per file)
// and reports the share of it sent so far; asked for an API key (401), sends it again once one is given.
async function sendForm(path, files, onProgress) {
  for (;;) {
    try {
      return await sendFormOnce(path, files, onProgress);
    } catch (problem) {
      if (problem.status !== 401 || !(await askForKey(Boolean(authHeaders().Authorization)))) throw problem;
    }
  }
}

function sendFormOnce(path, files, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Accept", "application/json");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(problemFrom(xhr.status, xhr.response, seconds(xhr.getResponseHeader("Retry-After"))));
    });
    xhr.addEventListener("error", () => reject(new Problem("offline", "The upload could not reach the service.")));
    const form = new FormData();
    for (const file of files) form.append("file", file);
    xhr.send(form);
  });
}

export const uploadFile = (file, onProgress) => sendForm("api/v1/jobs", [file], onProgress);

// Several files as one batch (POST /api/v1/batches); the answer is the batch.
export const uploadBatch = (files, onProgress) => sendForm("api/v1/batches", files, onProgress);

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

const ended = (body) => body.status === "succeeded" || body.status === "failed";

// Polls a job, search or batch until it ends (ended(body); a batch ends when its status is "done").
// Waits as long as Retry-After says, backs off (up to 30 s) while the service is unwell, and gives up
// at once on an answer that will not change (e.g. 404). isCurrent() lets the caller stop a poll the
// listener has navigated away from.
export async function poll(path, { onUpdate = () => {}, onTrouble = () => {}, isCurrent = () => true,
  isDone = ended } = {}) {
  let backoff = 1;
  while (isCurrent()) {
    let wait;
    try {
      const { body, retryAfter } = await requestKept(path);
      if (!isCurrent()) break;
      if (isDone(body)) return body;
      onUpdate(body);
      backoff = 1;
      wait = retryAfter || 1;
    } catch (problem) {
      const passing = problem.code === "offline" || problem.status === 429 || problem.status >= 500;
      if (!passing) throw problem;
      wait = problem.retryAfter || backoff;
      backoff = Math.min(backoff * 2, 30);
      onTrouble(problem, wait);
    }
    await sleep(wait);
  }
  return null;
}
