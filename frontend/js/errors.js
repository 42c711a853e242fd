// The API's error codes in a listener's words: a headline, and what to do about it. The server's own
// message (already plain) is shown under it for the particulars (the size limit, the video's reason).

const WORDS = {
  too_large: ["That file is too large", "Try a shorter song or a more compressed file (an MP3, say)."],
  unsupported_media_type: ["That doesn't look like an audio file", "Choose an audio file such as MP3, WAV, FLAC, OGG or M4A."],
  unsupported_audio: ["We couldn't read the audio in that file", "It may be damaged or cut short. Try another copy of the song."],
  too_long: ["That recording is too long", "Try a single song rather than a whole album or mix."],
  too_short: ["That recording is too short", "We need at least a second of sound to listen to."],
  url_not_allowed: ["That link can't be analysed", "Paste a link to a single YouTube video (youtube.com/watch?v=… or youtu.be/…)."],
  video_unavailable: ["That video isn't available", "It may be private, removed, age-restricted or a live stream. Try another video."],
  download_failed: ["We couldn't fetch that video", "The video site didn't answer as expected. Try again in a moment, or try another video."],
  rate_limited: ["Too many requests", "You've sent a lot in a short time. Wait a moment, then try again."],
  not_found: ["We can't find that analysis", "Results are kept for a day; this one may have expired, or the address is mistyped."],
  unavailable: ["The service is busy", "It's restarting or overloaded. Try again shortly."],
  offline: ["We can't reach the service", "Check your connection, then try again."],
  unauthorized: ["This service needs an API key", "Enter the key you were given when the page asks for it, or ask whoever runs the service for one."],
  cancelled: ["Analysis cancelled", "You stopped it before it finished. Choose another song, or send this one again."],
  conflict: ["It has already finished", "There was nothing left to stop."],
  internal: ["Something went wrong on our side", "It's not your song's fault. Try again; if it keeps happening, try later."],
  bad_request: ["That request wasn't understood", "Try again from the start page."],
};

export function describe(code, serverMessage) {
  const [title, advice] = WORDS[code] || ["Something went wrong", "Try again."];
  let particulars = serverMessage || "";
  // "Too many requests: at most 10 a minute." under the headline "Too many requests" says it twice.
  if (particulars.toLowerCase().startsWith(title.toLowerCase())) {
    particulars = particulars.slice(title.length).replace(/^[\s:.,-]+/, "");
    particulars = particulars.charAt(0).toUpperCase() + particulars.slice(1);
  }
  const detail = particulars && !advice.includes(particulars) ? `${particulars} ${advice}` : advice;
  // A batch's rows have room for the headline and the particulars, not the advice.
  return { title, detail, particulars };
}

// Errors that may pass by themselves, where "Try again" repeats the same request.
export const RETRYABLE = new Set(["rate_limited", "unavailable", "offline", "internal", "download_failed"]);
