// Draws the result's waveform peaks on a canvas, each bar in the colour of the genre heard there; the
// part already played is drawn solid and the rest faded.
import { colourOf } from "./genres.js";

// What the canvas shows now, so that playback (which asks every animation frame) redraws only when
// another bar has been played or the canvas has changed size.
const drawn = new WeakMap();

export function drawWaveform(canvas, result, playedFraction = 0) {
  const peaks = result.waveform.peaks;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (!width || !peaks.length) return;
  const bars = Math.max(1, Math.min(peaks.length, Math.floor(width / 3)));
  const played = Math.floor(playedFraction * bars + 0.5);
  const state = `${width}x${height}@${ratio}:${played}`;
  const last = drawn.get(canvas);
  if (last && last.result === result && last.state === state) return;
  drawn.set(canvas, { result, state });

  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);

  const step = width / bars, middle = height / 2;
  for (let i = 0; i < bars; i++) {
    // The loudest peak under this bar, so nothing is lost when there are more peaks than pixels.
    const from = Math.floor((i * peaks.length) / bars), to = Math.max(from + 1, Math.floor(((i + 1) * peaks.length) / bars));
    const peak = Math.max(...peaks.slice(from, to));
    const seconds = ((i + 0.5) / bars) * result.duration_s;
    g.fillStyle = colourOf(genreAt(result.segments, seconds));
    g.globalAlpha = i < played ? 1 : 0.45;
    const half = Math.max(1, peak * (middle - 2));
    g.fillRect(i * step, middle - half, Math.max(1, step - 1), half * 2);
  }
  g.globalAlpha = 1;
}

function genreAt(segments, seconds) {
  let found = segments[0];
  for (const segment of segments) {
    if (segment.start <= seconds) found = segment;
    else break;
  }
  return found ? found.top5[0].genre : "";
}
