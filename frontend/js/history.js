// This browser's own recent jobs and batches, newest first, in localStorage. Nothing about them is sent
// to the service: the list is only ever read here, so no one sees another listener's songs.
const KEY = "genre-history", KEEP = 20;

export function readHistory() {
  try {
    const entries = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(entries) ? entries.filter((e) => e && typeof e.id === "string" && typeof e.type === "string") : [];
  } catch {
    return [];  // storage refused (a private window) or damaged: an empty history
  }
}

function write(entries) {
  try {
    localStorage.setItem(KEY, JSON.stringify(entries.slice(0, KEEP)));
  } catch {
    // Storage refused or full: the history simply isn't kept.
  }
}

// Puts a job or batch at the top. type: "job" or "batch"; kind: what it was, in words ("Upload",
// "Recording", "Link", "YouTube", "Files", "Links").
export function remember(type, id, title, kind) {
  const entries = readHistory().filter((e) => !(e.type === type && e.id === id));
  write([{ type, id, title, kind, at: Date.now() }, ...entries]);
}

// A better title learned later (a link's video title once it is fetched); the entry keeps its place.
export function retitle(type, id, title) {
  const entries = readHistory();
  const entry = entries.find((e) => e.type === type && e.id === id);
  if (!entry || !title || entry.title === title) return;
  entry.title = title;
  write(entries);
}

export function clearHistory() {
  try {
    localStorage.removeItem(KEY);
  } catch {
    // Nothing was kept.
  }
}

export const HISTORY_KEY = KEY;
