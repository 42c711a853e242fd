// The batch view's parts: overall progress in words and as a fraction, the counts, and a row per song.
// Rows are kept by job id, so a poll rewrites only the rows that changed (and a focused link survives).
import { describe } from "./errors.js";
import { colourOf } from "./genres.js";
import { clock, element, percent, plural } from "./format.js";

const ITEM_STAGES = {
  queued: "Waiting", downloading: "Fetching the audio", decoding: "Reading the audio", analyzing: "Listening",
};
const KINDS = { upload: "Upload", youtube: "YouTube", url: "Link" };

// How far one unfinished song is, as the job view reckons it.
function itemFraction(item) {
  if (item.status === "succeeded" || item.status === "failed") return 1;
  const { done = 0, total = 0 } = item.progress || {};
  if (item.stage === "analyzing" && total) return 0.1 + (0.9 * done) / total;
  return { downloading: 0.03, decoding: 0.08 }[item.stage] || 0;
}

// null while a playlist is still being listed and no song is known yet (the bar then shows no figure).
export function batchFraction(batch) {
  const items = batch.items || [];
  if (!items.length) return batch.status === "done" ? 1 : null;
  return items.reduce((sum, item) => sum + itemFraction(item), 0) / items.length;
}

export function batchStage(batch) {
  const { done, total } = batch.progress;
  const { succeeded, failed } = batch.counts;
  if (batch.status === "done") {
    if (!total) return "Done: no songs to analyse";
    if (!failed) return total === 1 ? "Done: the song is analysed" : `Done: all ${total} songs analysed`;
    return `Done: ${succeeded} of ${plural(total, "song")} analysed, ${failed} failed`;
  }
  if (batch.expanding && !total) return "Listing the playlist's videos…";
  const listing = batch.expanding ? "; still listing the playlist's videos" : "";
  return `Analysing: ${done} of ${plural(total, "song")} finished${listing}`;
}

export function renderCounts(list, counts) {
  const parts = [["succeeded", "done"], ["failed", "failed"], ["running", "in progress"], ["queued", "waiting"]];
  list.replaceChildren(...parts.map(([key, words]) =>
    element("li", { class: `count count-${key}` }, element("b", {}, String(counts[key] || 0)), ` ${words}`)));
}

export function songTitle(item) {
  const source = item.source || {};
  return source.title || source.url || `Song ${(item.position ?? 0) + 1}`;
}

function statusCell(item) {
  const { done = 0, total = 0 } = item.progress || {};
  let words;
  if (item.status === "succeeded") words = "Done";
  else if (item.status === "failed") words = "Failed";
  else if (item.status === "queued") words = "Waiting";
  else if (item.stage === "analyzing" && total) words = `Listening ${percent(done / total)}`;
  else words = ITEM_STAGES[item.stage] || "Working";
  const cell = element("td", { class: "song-status" },
    element("span", { class: `pill pill-${item.status}` }, words));
  if (item.status === "failed") {
    const error = item.error || {};
    const { title, particulars } = describe(error.code, error.message);
    // A long message (a download's) is cut to a few lines here; it is whole on hover and on the song's own view.
    cell.append(element("p", { class: "row-error", title: particulars || null },
      element("strong", {}, `${title}.`), particulars ? ` ${particulars}` : ""));
  }
  return cell;
}

function topCell(item) {
  if (!item.top) return element("td", { class: "top-genre muted" }, item.status === "failed" ? "–" : "…");
  return element("td", { class: "top-genre" },
    element("span", { class: "swatch", style: { background: colourOf(item.top.genre) } }),
    ` ${item.top.genre} `, element("span", { class: "top-p" }, percent(item.top.p)));
}

function rowCells(item, batchId) {
  const source = item.source || {};
  const about = [KINDS[source.kind], source.duration_s ? clock(source.duration_s) : null,
    item.cached ? "from an earlier analysis" : null].filter(Boolean).join(" · ");
  return [
    element("td", { class: "num" }, String((item.position ?? 0) + 1)),
    element("td", { class: "song" }, element("a", { href: `#/jobs/${item.id}?batch=${batchId}` }, songTitle(item)),
      about ? element("span", { class: "song-about" }, about) : null),
    statusCell(item),
    topCell(item),
  ];
}

// rows: a Map the caller keeps per batch on screen (job id -> { row, state }).
export function renderRows(body, items, rows, batchId) {
  const ordered = items.map((item) => {
    const state = JSON.stringify(item);
    let kept = rows.get(item.id);
    if (!kept) {
      kept = { row: element("tr", { "data-job": item.id, class: "song-row" }), state: "" };
      rows.set(item.id, kept);
    }
    if (kept.state !== state) {
      kept.row.replaceChildren(...rowCells(item, batchId));
      kept.row.dataset.status = item.status;
      kept.state = state;
    }
    return kept.row;
  });
  // Only when the rows themselves changed (a playlist's videos arriving), so focus is left alone otherwise.
  const same = ordered.length === body.children.length && ordered.every((row, i) => body.children[i] === row);
  if (!same) body.replaceChildren(...ordered);
}
