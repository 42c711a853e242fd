"""Speed and memory of the genre engine on a 3-minute song (prints figures; not a test).

    make bench            # or: .venv/bin/python tests/benchmarks/bench_engine.py [--song FILE]

The song: six real GTZAN excerpts joined into 3 minutes (when ../shared/data is
beside the repo), else 3 minutes of generated audio; encoded as a 44.1 kHz stereo
192 kb/s MP3 like a typical download. Two pipelines on the same song in one run:

- ours: ffmpeg decode through a pipe, one batched log-mel for the whole song,
  the network on small batches (BATCH_SIZE), mean over segments;
- seed-style, as the projects this one grew from did it: librosa.load, a librosa
  mel spectrogram per 3-second segment, one forward pass per segment through the
  network in its textbook layer order.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from shared.engine.audio import SAMPLE_RATE, decode  # noqa: E402
from shared.engine.features import HOP, N_FFT, N_MELS, PATCH_FRAMES, segment  # noqa: E402
from shared.engine.inference import GenreClassifier  # noqa: E402
from shared.service.settings import Settings  # noqa: E402

GTZAN = REPO.parent / "shared" / "data" / "gtzan"
EXCERPTS = ["blues/blues.00000", "classical/classical.00000", "jazz/jazz.00000",
            "metal/metal.00000", "disco/disco.00002", "country/country.00000"]
REPEATS = 5


def make_song(folder: Path) -> tuple[Path, str]:
    song = folder / "song3min.mp3"
    encode = ["-ac", "2", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "192k", str(song)]
    files = [GTZAN / f"{name}.mp3" for name in EXCERPTS]
    if all(f.is_file() for f in files):
        listing = folder / "list.txt"
        listing.write_text("".join(f"file '{f}'\n" for f in files))
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                        *encode], check=True)
        return song, "six GTZAN excerpts joined (180 s)"
    from conftest import make_audio

    return make_audio(song, 180.0), "generated audio (180 s; ../shared/data not found)"


def median_time(run, repeats: int = REPEATS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def seed_style(path: Path, classifier: GenreClassifier) -> np.ndarray:
    import librosa

    audio, _ = librosa.load(path, sr=SAMPLE_RATE)
    step = PATCH_FRAMES * HOP
    probs = []
    with torch.inference_mode():
        for start in range(0, len(audio) - step + 1, step):
            mel = librosa.feature.melspectrogram(y=audio[start:start + step], sr=SAMPLE_RATE,
                                                 n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS).T
            mel = np.log10(1 + 10000 * mel.astype(np.float16).astype(np.float32))[:PATCH_FRAMES]
            tags = classifier.backbone.features(torch.from_numpy(mel)[None], reference_order=True)["tags"]
            probs.append(torch.softmax(classifier.head(tags), dim=1)[0].numpy())
    return np.mean(probs, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--song", type=Path, help="benchmark this file instead")
    args = parser.parse_args()
    settings = Settings.from_env()

    with tempfile.TemporaryDirectory() as tmp:
        song, what = (args.song, str(args.song)) if args.song else make_song(Path(tmp))
        started = time.perf_counter()
        classifier = GenreClassifier(**settings.model_options)
        load_s = time.perf_counter() - started

        decode_s, audio = median_time(lambda: decode(song, **settings.decode_options))
        duration = len(audio) / SAMPLE_RATE
        frontend_s, segments = median_time(lambda: segment(audio, classifier.device))
        predict_s, prediction = median_time(lambda: classifier.predict(audio))
        network_s = predict_s - frontend_s
        # The same network in the other arithmetic, for comparison (which one is faster depends on the CPU).
        other = "fp32" if classifier.precision == "int8" else "int8"
        classifier.backbone.int8 = other == "int8"
        other_network_s = median_time(lambda: classifier.predict(audio))[0] - frontend_s
        classifier.backbone.int8 = classifier.precision == "int8"
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        # The two pipelines take turns, so a burst of load on this shared machine hits both.
        ours_runs, seed_runs = [], []
        for _ in range(REPEATS):
            ours_s = median_time(lambda: classifier.predict(decode(song, **settings.decode_options)), repeats=1)[0]
            ours_runs.append(ours_s)
            seed_s, seed_probs = median_time(lambda: seed_style(song, classifier), repeats=1)
            seed_runs.append(seed_s)
        end_to_end_s, seed_s = statistics.median(ours_runs), statistics.median(seed_runs)
        ratios = sorted(s / o for s, o in zip(seed_runs, ours_runs))
        cli_started = time.perf_counter()
        cli = Path(sys.executable).with_name("genre-classify")
        subprocess.run([str(cli), "--json", str(song)], check=True, capture_output=True)
        cli_s = time.perf_counter() - cli_started

    ours_top = prediction.top_genres(1)[0]["genre"]
    seed_top = classifier.head.labels[int(seed_probs.argmax())]
    print(f"song: {what}, {duration:.1f} s, {len(segments.patches)} segments")
    print(f"machine: {torch.get_num_threads()} torch threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, device {classifier.device}, batch {classifier.batch_size}, "
          f"precision {classifier.precision} (PRECISION={settings.precision}); medians of {REPEATS} runs")
    print(f"model load (once per process):   {load_s:6.3f} s   (mostly importing librosa's filters)")
    print(f"decode (ffmpeg pipe):            {decode_s:6.3f} s")
    print(f"front-end (log-mel + patches):   {frontend_s:6.3f} s")
    print(f"network (musicnn + head):        {network_s:6.3f} s")
    print(f"network in {other}, for comparison: {other_network_s:6.3f} s")
    print(f"end to end (decode → top-5):     {end_to_end_s:6.3f} s   real-time factor {end_to_end_s / duration:.4f}"
          f" ({duration / end_to_end_s:.0f}x faster than real time)")
    print(f"peak memory (process RSS):       {peak_mb:6.0f} MB")
    print(f"seed-style pipeline:             {seed_s:6.3f} s   {seed_s / end_to_end_s:.1f}x slower "
          f"(per round, taking turns: {ratios[0]:.1f}x to {ratios[-1]:.1f}x)")
    print(f"genre-classify, cold process:    {cli_s:6.3f} s   (imports + model load + the song)")
    print(f"top-1: ours {ours_top}, seed-style {seed_top}")


if __name__ == "__main__":
    main()
