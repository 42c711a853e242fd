// The song-level view: top-5 bars, a plain-words note when the model is unsure, and tag chips.
import { colourOf, tagKind } from "./genres.js";
import { element, percent } from "./format.js";

export function renderBars(list, top5) {
  list.replaceChildren(...top5.map(({ genre, p }, rank) => element("li", { class: "bar-row" },
    element("span", { class: "bar-label" }, genre),
    element("span", { class: "bar-track", role: "meter", "aria-valuemin": "0", "aria-valuemax": "100",
      "aria-valuenow": String(Math.round(p * 100)), "aria-label": `${genre}, rank ${rank + 1}` },
      element("span", { class: "bar-fill", style: { width: `${Math.max(p * 100, 0.5)}%`, background: colourOf(genre) } })),
    element("span", { class: "bar-value" }, percent(p)))));
}

// The head's probabilities are not calibrated (see How it works), so the note says what the numbers
// cannot: that a top genre under half, or one barely ahead, is a guess, and that a song may change.
export function unsureNote(result) {
  const [first, second] = result.top5;
  const segments = result.segments || [];
  const agreeing = segments.filter((s) => s.top5[0].genre === first.genre).length;
  const notes = [];
  if (first.p < 0.5) {
    notes.push(`The model is unsure about this song: no genre gets half of its vote. ` +
      `Read it as “${first.genre} or ${second.genre}, perhaps something in between”.`);
  } else if (second && first.p - second.p < 0.15) {
    notes.push(`A close call between ${first.genre} and ${second.genre}.`);
  }
  if (segments.length >= 4 && agreeing / segments.length < 0.6) {
    notes.push(`Its genre changes through the song: ${first.genre} leads in ${agreeing} of ${segments.length} ` +
      `segments. The timeline below shows where.`);
  }
  return notes.join(" ");
}

export function renderTags(list, tags) {
  list.replaceChildren(...tags.map(({ tag, p }) => {
    const kind = tagKind(tag);
    return element("li", { class: `chip chip-${kind}`, title: `${tag}: ${percent(p)} of the tagger's vote` },
      // The tagger's vocabulary mixes cases ("Mellow", "Hip-Hop", "rock"); the chips do not.
      element("span", { class: "chip-kind" }, kind), ` ${tag.toLowerCase()}`);
  }));
}
