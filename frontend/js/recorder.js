// "What's playing?": up to 30 s from the microphone (getUserMedia + MediaRecorder), at least 10 s before
// it can be analysed. The recording becomes a File, uploaded like any other song.
export const MIN_SECONDS = 10, MAX_SECONDS = 30;

// Containers the service reads (WebM and Ogg with Opus, M4A), in the order a recorder is asked for them.
const TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg", "audio/mp4"];
const EXTENSIONS = { "audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "m4a", "video/webm": "webm" };

export class MicrophoneProblem extends Error {
  constructor(title, detail) {
    super(detail);
    this.title = title;
    this.detail = detail;
  }
}

export function canRecord() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
}

function inWords(error) {
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return new MicrophoneProblem("The microphone was not allowed",
        "The browser (or you) refused this page the microphone. Allow it in the site's settings, then press Record again.");
    case "NotFoundError":
    case "OverconstrainedError":
      return new MicrophoneProblem("No microphone found", "Connect a microphone, or upload a file instead.");
    case "NotReadableError":
    case "AbortError":
      return new MicrophoneProblem("The microphone can't be used",
        "Another app may be using it, or the system blocked it. Close that app, then try again.");
    default:
      return new MicrophoneProblem("Recording didn't work", (error && error.message) || "Try again, or upload a file instead.");
  }
}

// Starts recording at once. onTick(seconds) every quarter second, onLevel(0..1) as the sound's loudness
// changes; stop() ends it and resolves finished with the File (rejects with a MicrophoneProblem when it
// could not record, or with one whose title says too short); cancel() throws it away.
export async function startRecording({ onTick = () => {}, onLevel = () => {} } = {}) {
  if (!canRecord()) {
    throw new MicrophoneProblem("This browser can't record here",
      "Recording needs a recent browser and a secure (https) page. Upload a file instead.");
  }
  let stream;
  try {
    // Voice processing (echo cancelling, noise suppression, gain) would treat music as noise.
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (error) {
    throw inWords(error);
  }
  const type = TYPES.find((t) => MediaRecorder.isTypeSupported(t)) || "";
  let recorder;
  try {
    recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
  } catch (error) {
    stream.getTracks().forEach((track) => track.stop());
    throw inWords(error);
  }

  const chunks = [];
  const began = performance.now();
  const elapsed = () => (performance.now() - began) / 1000;
  const meter = levelMeter(stream, onLevel);
  let cancelled = false;
  const ticker = setInterval(() => {
    const seconds = Math.min(elapsed(), MAX_SECONDS);
    onTick(seconds);
    if (seconds >= MAX_SECONDS && recorder.state === "recording") recorder.stop();
  }, 250);

  const finished = new Promise((resolve, reject) => {
    recorder.addEventListener("dataavailable", (event) => { if (event.data.size) chunks.push(event.data); });
    recorder.addEventListener("error", (event) => reject(inWords(event.error)));
    recorder.addEventListener("stop", () => {
      const seconds = elapsed();
      clearInterval(ticker);
      meter.close();
      stream.getTracks().forEach((track) => track.stop());
      if (cancelled) { resolve(null); return; }
      // A microphone unplugged (or taken away) ends the recording early.
      if (seconds < MIN_SECONDS - 0.5) {
        reject(new MicrophoneProblem("That recording is too short",
          `It lasted ${Math.floor(seconds)} s; at least ${MIN_SECONDS} s are needed. Press Record to try again.`));
        return;
      }
      const mime = (recorder.mimeType || type || "audio/webm").split(";")[0];
      const blob = new Blob(chunks, { type: mime });
      resolve(new File([blob], `${fileTitle()}.${EXTENSIONS[mime] || "webm"}`, { type: mime }));
    });
    // The track ends by itself when the microphone goes away.
    stream.getAudioTracks().forEach((track) => track.addEventListener("ended", () => {
      if (recorder.state === "recording") recorder.stop();
    }));
  });
  recorder.start(1000);

  return {
    finished,
    elapsed,
    stop() { if (recorder.state === "recording") recorder.stop(); },
    cancel() { cancelled = true; if (recorder.state === "recording") recorder.stop(); },
  };
}

// "Recording 14:05:32": a name that tells one recording from another in the history.
function fileTitle() {
  const now = new Date();
  const two = (n) => String(n).padStart(2, "0");
  return `Recording ${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}`;
}

// The microphone's loudness, so a listener sees that it hears the music. Optional: without Web Audio
// the recording works all the same.
function levelMeter(stream, onLevel) {
  let context, frame;
  try {
    context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const measure = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      onLevel(Math.min(1, Math.sqrt(sum / samples.length) * 4));
      frame = requestAnimationFrame(measure);
    };
    measure();
  } catch {
    return { close() {} };
  }
  return { close() { cancelAnimationFrame(frame); context.close().catch(() => {}); onLevel(0); } };
}
