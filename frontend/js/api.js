// Talks to the JSON API. Every failure becomes a Problem with the API's error code, so the page can
// put it in a listener's words (see errors.js).

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

export async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" }, ...options });
  } catch {
    throw new Problem("offline", "The service could not be reached.");
  }
  const body = await response.json().catch(() => null);
  const retryAfter = seconds(response.headers.get("Retry-After"));
  if (!response.ok) throw problemFrom(response.status, body, retryAfter);
  return { body, retryAfter };
}

export const postJson = (path, data) =>
  request(path, { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(data) });

// fetch() cannot report upload progress, XMLHttpRequest can. Sends a form (field `file`, once per file)
// and reports the share of it sent so far.
function sendForm(path, files, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Accept", "application/json");
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
      const { body, retryAfter } = await request(path);
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
