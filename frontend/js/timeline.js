// One cell per 3-second segment, coloured by its top genre and faded when that genre is weak. Each cell
// is a button: hover or focus shows its top-5, a click seeks playback, and the arrow keys move between
// cells (only one cell is in the tab order, so the page stays quick to tab through).
import { colourOf, GENRE_COLOURS } from "./genres.js";
import { clock, element, percent } from "./format.js";

export function renderTimeline({ container, tooltip, legend }, segments, onPick) {
  const cells = segments.map((segment, index) => {
    const best = segment.top5[0];
    const words = segment.top5.map((g) => `${g.genre} ${percent(g.p)}`).join(", ");
    const cell = element("button", {
      type: "button", class: "cell", tabindex: index === 0 ? "0" : "-1",
      "aria-label": `${clock(segment.start)} to ${clock(segment.end)}: ${words}`,
      style: { background: colourOf(best.genre), opacity: String(0.35 + 0.65 * best.p) },
    });
    const show = () => showTooltip(tooltip, container, cell, segment);
    cell.addEventListener("mouseenter", show);
    cell.addEventListener("focus", show);
    cell.addEventListener("mouseleave", () => { if (document.activeElement !== cell) tooltip.hidden = true; });
    cell.addEventListener("blur", () => { tooltip.hidden = true; });
    cell.addEventListener("click", () => onPick(segment));
    cell.addEventListener("keydown", (event) => {
      const to = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: cells.length - 1 }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      const next = cells[Math.min(Math.max(to, 0), cells.length - 1)];
      cell.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
    });
    return cell;
  });
  container.replaceChildren(...cells);

  const present = Object.keys(GENRE_COLOURS).filter((genre) => segments.some((s) => s.top5[0].genre === genre));
  legend.replaceChildren(...present.map((genre) => element("li", {},
    element("span", { class: "swatch", style: { background: colourOf(genre) } }), genre)));
  return cells;
}

function showTooltip(tooltip, container, cell, segment) {
  tooltip.replaceChildren(
    element("strong", {}, `${clock(segment.start)}–${clock(segment.end)}`),
    element("ol", {}, ...segment.top5.map((g) => element("li", {},
      element("span", { class: "swatch", style: { background: colourOf(g.genre) } }),
      `${g.genre} `, element("b", {}, percent(g.p))))));
  tooltip.hidden = false;
  const box = container.getBoundingClientRect(), at = cell.getBoundingClientRect();
  const centre = at.left + at.width / 2 - box.left;
  const half = tooltip.offsetWidth / 2;
  tooltip.style.left = `${Math.min(Math.max(centre, half), box.width - half)}px`;
}

// Marks the cell under the playhead.
export function markPlaying(cells, segments, seconds) {
  cells.forEach((cell, i) => cell.classList.toggle("playing",
    seconds >= segments[i].start && seconds < segments[i].end));
}
