// A small page on the API: submit, poll the job (honouring Retry-After), show the result.
// The job's URL is kept in the address (#job=ID), so a reload resumes polling.
const $ = (id) => document.getElementById(id);
const COLOURS = { blues: "#3b6fb6", classical: "#c9a227", country: "#b5651d", disco: "#d63fa5", hiphop: "#7b3fd6",
  jazz: "#2a9d8f", metal: "#333333", pop: "#ef476f", reggae: "#2fbf4a", rock: "#d62828" };

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error ? body.error.message : `The server answered ${response.status}.`);
    error.status = response.status;
    error.retryAfter = Number(response.headers.get("Retry-After") || 0);
    throw error;
  }
  return { body, retryAfter: Number(response.headers.get("Retry-After") || 1) };
}

function showError(message) {
  $("job").hidden = false;
  $("job-error").hidden = false;
  $("job-error").textContent = message;
}

// Polls a job or search until it ends, calling onUpdate with each unfinished body.
async function poll(path, onUpdate = () => {}) {
  let delay = 1;
  for (;;) {
    try {
      const { body, retryAfter } = await api(path);
      if (body.status === "succeeded" || body.status === "failed") return body;
      onUpdate(body);
      delay = retryAfter;
    } catch (error) {
      if (error.status && error.status < 500 && error.status !== 429) throw error; // e.g. an unknown job
      delay = error.retryAfter || Math.min(delay * 2, 30); // back off while the server is unwell
    }
    await new Promise((resolve) => setTimeout(resolve, delay * 1000));
  }
}

function render(job) {
  $("job").hidden = false;
  $("job-title").textContent = job.source.title || job.source.url || "Your song";
  $("job-stage").textContent = job.status === "succeeded" ? (job.cached ? "Done (from an earlier analysis)" : "Done")
    : job.status === "failed" ? "Failed" : `${job.stage}…`;
  const { done, total } = job.progress;
  $("job-progress").value = total ? done / total : 0;
  $("job-error").hidden = !job.error;
  if (job.error) $("job-error").textContent = job.error.message;
  $("job-result").hidden = !job.result;
  if (job.result) renderResult(job.result);
}

function renderResult(result) {
  $("top5").replaceChildren(...result.top5.map(({ genre, p }) => {
    const item = document.createElement("li");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(p * 200)}px`;
    item.append(`${genre} ${(p * 100).toFixed(0)}%`, bar);
    return item;
  }));
  $("timeline").replaceChildren(...result.segments.map((segment) => {
    const cell = document.createElement("span");
    const best = segment.top5[0];
    cell.style.background = COLOURS[best.genre] || "#888";
    cell.title = `${segment.start.toFixed(0)}–${segment.end.toFixed(0)} s: ` +
      segment.top5.map((g) => `${g.genre} ${(g.p * 100).toFixed(0)}%`).join(", ");
    return cell;
  }));
  $("tags").textContent = result.tags.map((t) => t.tag).join(" · ");
}

async function follow(location) {
  const id = location.split("/").pop();
  history.replaceState(null, "", `#job=${id}`);
  render(await poll(location, render));
}

async function submit(options) {
  $("job-error").hidden = true;
  try {
    const { body } = await api("/api/v1/jobs", { method: "POST", ...options });
    render(body);
    await follow(`/api/v1/jobs/${body.id}`);
  } catch (error) {
    showError(error.message);
  }
}

$("upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const data = new FormData();
  data.append("file", $("file").files[0]);
  submit({ body: data });
});

$("link-form").addEventListener("submit", (event) => {
  event.preventDefault();
  submit({ headers: { "Content-Type": "application/json" }, body: JSON.stringify({ url: $("url").value }) });
});

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const { body } = await api("/api/v1/searches", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ q: $("q").value, limit: 5 }) });
    const search = await poll(`/api/v1/searches/${body.id}`);
    if (search.error) throw new Error(search.error.message);
    $("candidates").replaceChildren(...search.candidates.map((c) => {
      const item = document.createElement("li");
      const pick = document.createElement("button");
      pick.textContent = `${c.title} — ${c.channel || ""}`;
      pick.addEventListener("click", () => submit({ headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ url: c.url }) }));
      item.append(pick);
      return item;
    }));
  } catch (error) {
    showError(error.message);
  }
});

const resumed = location.hash.match(/^#job=([0-9a-f]+)$/);
if (resumed) follow(`/api/v1/jobs/${resumed[1]}`).catch((error) => showError(error.message));
