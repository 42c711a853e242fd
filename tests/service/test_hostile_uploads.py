"""Hostile inputs through the real stack (API → Redis → Celery worker with real ffmpeg → API).

A canary song lies on the worker's disk, at an absolute path, at a path relative to the worker's
working folder, and beside and above the stored uploads. Playlists, concat lists, manifests and
polyglots name it every way a file can be named; truncated, absurd and multi-stream files, and
genuine songs under odd names, come with them. Each input gets its expected answer: refused at the
upload (415), a job failed with a code, or, for the genuine ones, a job that analysed the input's
own audio. None may analyse the canary, and afterwards the worker lives and no file is left behind.

The same hostile files are also queued as if the API's sniffer had been fooled (the worker sniffs
again and forces the demuxer), and served as links (yt-dlp's download goes through the same decoder).
"""
from __future__ import annotations

import hashlib
import io
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from stack import REPO

from conftest import id3, make_audio
from shared.service import content_keys, jobs, registry
from shared.service.queue import ANALYZE, make_celery
from shared.engine.sniff import _mpeg_frame_length

CANARY_SECONDS = 13.37  # no genuine input lasts anywhere near this
GENUINE_SECONDS = 3.0
REFUSED = 415


@dataclass
class Case:
    name: str
    content: bytes
    expect: int | str  # 415, a job's error code, or "succeeded"
    filename: str = "upload.mp3"
    seconds: float | None = None  # a succeeded job's duration: its own audio's
    outcome: dict = field(default_factory=dict)


# --- Text that makes an unforced ffmpeg open other files.

def hls(target: str, repeat: int = 1) -> bytes:
    entries = f"#EXTINF:{CANARY_SECONDS},\n{target}\n" * repeat
    return (f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:30\n#EXT-X-MEDIA-SEQUENCE:0\n{entries}"
            "#EXT-X-ENDLIST\n").encode()


def ffconcat(target: str) -> bytes:
    return f"ffconcat version 1.0\nfile '{target}'\nfile '{target}'\n".encode()


def dash_mpd(target: str) -> bytes:
    return ('<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
            'mediaPresentationDuration="PT13S" minBufferTime="PT1S"><Period><AdaptationSet mimeType="audio/mpeg">'
            f'<Representation id="a" bandwidth="128000"><BaseURL>{target}</BaseURL></Representation>'
            '</AdaptationSet></Period></MPD>\n').encode()


SDP = b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=canary\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 0\n"
WEBVTT = b"WEBVTT\n\n00:00.000 --> 00:13.370\ncanary\n"
FFMETADATA = b";FFMETADATA1\ntitle=canary\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=13370\n"


def wav_header(rate: int = 8000, channels: int = 1, bits: int = 8, data_size: int = 0, riff_size: int | None = None):
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    riff_size = 36 + data_size if riff_size is None else riff_size
    return (b"RIFF" + struct.pack("<I", riff_size & 0xFFFFFFFF) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", data_size & 0xFFFFFFFF))


# Magic numbers the sniffer accepts at the start of a file: the forced demuxer must refuse what follows.
MAGIC = {
    "riff-wave": b"RIFF\x00\x01\x00\x00WAVE",
    "riff-avi": b"RIFF\x00\x01\x00\x00AVI ",
    "form-aiff": b"FORM\x00\x01\x00\x00AIFF",
    "flac": b"fLaC",
    "ogg": b"OggS",
    "ftyp": b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00isomiso2",
    "ebml": b"\x1a\x45\xdf\xa3",
    "au": b".snd",
    "asf": b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c",
    "ape": b"MAC ",
    "wavpack": b"wvpk",
}


def ffmpeg(*arguments) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, arguments)], check=True)


def genuine_files(folder: Path) -> dict[str, bytes]:
    return {suffix: make_audio(folder / f"genuine{suffix}", GENUINE_SECONDS, pitch=1.0 + i / 10).read_bytes()
            for i, suffix in enumerate([".mp3", ".wav", ".flac", ".ogg", ".m4a", ".webm", ".opus", ".au"])}


def media_files(folder: Path) -> dict[str, bytes]:
    """Videos and multi-stream files, each a few seconds long."""
    tone, picture = ["-f", "lavfi", "-i", "sine=f=440:d=3"], ["-f", "lavfi", "-i", "color=s=32x32:r=5:d=4"]
    made = {
        "video-longer.mp4": [*tone, *picture, "-c:a", "aac", "-c:v", "libx264"],
        "video-longer.webm": [*tone, *picture, "-c:a", "libopus", "-c:v", "libvpx"],
        "video-only.mp4": [*picture, "-c:v", "libx264"],
        "default-second.mkv": ["-f", "lavfi", "-i", "sine=f=300:d=5", *tone, "-map", "0", "-map", "1", "-c:a",
                               "libopus", "-disposition:a:0", "0", "-disposition:a:1", "default"],
        "silent-first.m4a": ["-f", "lavfi", "-i", "anullsrc=d=3", *tone, "-map", "0", "-map", "1", "-c:a", "aac",
                             "-disposition:a:0", "0", "-disposition:a:1", "default"],
    }
    for name, arguments in made.items():
        ffmpeg(*arguments, folder / name)
    return {name: (folder / name).read_bytes() for name in made}


def upload_cases(targets: dict[str, str], genuine: dict[str, bytes], media: dict[str, bytes]) -> list[Case]:
    mp3, wav, flac = genuine[".mp3"], genuine[".wav"], genuine[".flac"]
    bare = mp3[id3_length(mp3):]
    first = _mpeg_frame_length(bare, 0)
    two_frames = mp3[:id3_length(mp3) + first + _mpeg_frame_length(bare, first)]  # the tag, then two frames
    cases = [Case(f"id3+hls:{label}", id3() + hls(target), REFUSED) for label, target in targets.items()]
    cases += [
        Case("hls-bare", hls(targets["absolute"]), REFUSED, "list.m3u8"),
        Case("id3+hls-200-times", id3() + hls(targets["absolute"], repeat=200), REFUSED),
        Case("id3+hls-relative-repeated", id3() + hls(targets["beside-uploads"], repeat=200), REFUSED),
        Case("id3+id3+hls", id3(b"\0" * 32) + id3(b"\0" * 8, version=3) + hls(targets["absolute"]), REFUSED),
        Case("id3-footer+hls", id3(b"\0" * 8, flags=0x10) + b"3DI\x04\x00\x10\x00\x00\x00\x08" + hls("canary.mp3"),
             REFUSED),
        Case("id3-padding+hls", id3(b"\0" * 8) + b"\0" * 500 + hls(targets["absolute"]), REFUSED),
        Case("id3+sdp", id3() + SDP, REFUSED),
        Case("id3+dash", id3() + dash_mpd(targets["absolute"]), REFUSED),
        Case("id3+webvtt", id3() + WEBVTT, REFUSED),
        Case("id3+ffmetadata", id3() + FFMETADATA, REFUSED),
        Case("sdp-bare", SDP, REFUSED, "stream.sdp"),
        Case("dash-bare", dash_mpd(targets["absolute"]), REFUSED, "manifest.mpd"),
    ]
    cases += [Case(f"id3+ffconcat:{label}", id3() + ffconcat(targets[label]), REFUSED)
              for label in ("absolute", "file-url", "worker-cwd", "beside-uploads")]
    cases += [Case(f"{label}+hls", magic + hls(targets["absolute"]), "unsupported_audio")
              for label, magic in MAGIC.items()]
    cases += [Case(f"{label}+ffconcat", MAGIC[label] + ffconcat(targets["absolute"]), "unsupported_audio")
              for label in ("riff-wave", "ogg", "ebml", "ftyp")]
    cases += [Case(f"{label}+ffmetadata", MAGIC[label] + FFMETADATA, "unsupported_audio") for label in ("flac", "au")]
    cases += [
        # Polyglots: real audio with a playlist after it or a wrong magic number before it.
        Case("mp3-then-hls", mp3 + hls(targets["absolute"]), "succeeded", seconds=GENUINE_SECONDS),
        Case("wav-then-hls", wav + hls(targets["absolute"]), "succeeded", "w.wav", seconds=GENUINE_SECONDS),
        Case("two-frames-then-hls", two_frames + hls(targets["absolute"]), "unsupported_audio"),
        Case("ogg-magic-on-mp3", MAGIC["ogg"] + bare, "unsupported_audio"),
        Case("flac-magic-on-mp3", MAGIC["flac"] + bare, "unsupported_audio"),
        Case("ebml-magic-on-mp3", MAGIC["ebml"] + bare, "unsupported_audio"),
        Case("wav-whose-samples-are-a-playlist", wav_header(data_size=len(hls(targets["absolute"])))
             + hls(targets["absolute"]), "too_short", "w.wav"),
        # Truncations.
        Case("mp3-cut-to-40%", mp3[: len(mp3) * 4 // 10], "unsupported_audio"),
        Case("flac-cut-to-40%", flac[: len(flac) * 4 // 10], "unsupported_audio", "f.flac"),
        Case("m4a-cut-to-40%", genuine[".m4a"][: len(genuine[".m4a"]) * 4 // 10], "unsupported_audio", "a.m4a"),
        Case("wav-cut-to-40%", wav[: len(wav) * 4 // 10], "unsupported_audio", "w.wav"),
        Case("webm-cut-to-40%", genuine[".webm"][: len(genuine[".webm"]) * 4 // 10], "unsupported_audio", "a.webm"),
        Case("id3-header-only", mp3[:10], REFUSED),
        Case("flac-magic-only", b"fLaC", "unsupported_audio", "f.flac"),
        Case("wav-header-only", wav[:44], "unsupported_audio", "w.wav"),
        # Absurd headers.
        Case("id3-declaring-256-mb", id3(size=0x0FFFFFFF) + bare, REFUSED),
        Case("id3-size-not-syncsafe", b"ID3\x04\x00\x00\xff\xff\xff\xff" + bare, REFUSED),
        Case("id3-version-255", id3(b"\0" * 8, version=255) + bare, REFUSED),
        Case("id3-nine-tags", id3(b"\0" * 8) * 9 + bare, REFUSED),
        Case("wav-zero-channels", wav_header(channels=0, data_size=24000) + b"\x80" * 24000, "unsupported_audio"),
        Case("wav-zero-rate", wav_header(rate=0, data_size=24000) + b"\x80" * 24000, "unsupported_audio"),
        Case("wav-huge-rate", wav_header(rate=0x7FFFFFFF, data_size=24000) + b"\x80" * 24000, "unsupported_audio"),
        Case("wav-declaring-4-gb", wav_header(data_size=0xFFFFFFFF, riff_size=0xFFFFFFFF) + b"\x80" * 24000,
             "succeeded", "w.wav", seconds=3.0),
        Case("m4a-with-a-4-gb-box", MAGIC["ftyp"] + b"\xff\xff\xff\xffmoov" + b"\0" * 64, "unsupported_audio"),
        Case("ebml-with-a-huge-element", MAGIC["ebml"] + b"\x01\xff\xff\xff\xff\xff\xff\xff" + b"\0" * 64,
             "unsupported_audio"),
        # Video and several streams: the audio a player would play, its own duration.
        Case("video-longer-than-sound.mp4", media["video-longer.mp4"], "succeeded", "v.mp4", seconds=3.0),
        Case("video-longer-than-sound.webm", media["video-longer.webm"], "succeeded", "v.webm", seconds=3.0),
        Case("video-without-sound", media["video-only.mp4"], "unsupported_audio", "v.mp4"),
        Case("default-audio-stream-second", media["default-second.mkv"], "succeeded", "two.mkv", seconds=3.0),
        Case("silent-first-audio-stream", media["silent-first.m4a"], "succeeded", "two.m4a", seconds=3.0),
    ]
    cases += [Case(f"genuine{suffix}", content, "succeeded", f"song{suffix}", seconds=GENUINE_SECONDS)
              for suffix, content in genuine.items() if suffix != ".mp3"]
    odd_names = ["AC/DC - Back.mp3", "Ünïcødé 音楽 🎵.mp3", "a" * 300 + ".mp3", "tab\tand\x1b[31mescape\x7f.mp3",
                 "../../etc/passwd", "..\\..\\windows\\win.ini", "canary.mp3", "%2e%2e%2fetc%2fpasswd.mp3",
                 "'; rm -rf / #.mp3", "-i file:canary.mp3", "|cat canary.mp3", "song.m3u8"]
    # The same song under each name, a few zero bytes longer each time so the result cache never answers.
    cases += [Case(f"name:{name[:40]!r}", mp3 + b"\0" * (i + 1), "succeeded", name, seconds=GENUINE_SECONDS)
              for i, name in enumerate(odd_names)]
    return cases


def id3_length(data: bytes) -> int:
    return 10 + (data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9]) if data.startswith(b"ID3") else 0


# --- The run: every input at once, then every answer.

@pytest.fixture(scope="module")
def canary(settings, tmp_path_factory):
    """The canary's places on the worker's disk, and how each is named in a playlist."""
    song = make_audio(tmp_path_factory.mktemp("canary") / "canary.mp3", CANARY_SECONDS, pitch=1.7, beat=0.3)
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    in_cwd = REPO / "tests" / "artifacts" / "hostile-canary.mp3"  # the worker runs in REPO
    in_cwd.parent.mkdir(parents=True, exist_ok=True)
    copies = [in_cwd, settings.storage_dir / "canary.mp3", settings.storage_dir.parent / "canary.mp3"]
    for copy in copies:
        copy.write_bytes(song.read_bytes())
    targets = {
        "absolute": str(song),
        "file-colon": f"file:{song}",
        "file-url": f"file://{song}",
        "worker-cwd": "tests/artifacts/hostile-canary.mp3",
        "worker-cwd-file-colon": "file:tests/artifacts/hostile-canary.mp3",
        "beside-uploads": "canary.mp3",
        "above-uploads": "../canary.mp3",
    }
    yield song, targets, copies
    for copy in copies:
        copy.unlink(missing_ok=True)


def post_file(client, content: bytes, filename: str):
    return client.post("/api/v1/jobs", data={"file": (io.BytesIO(content), filename)},
                       content_type="multipart/form-data")


def queue_stored(store, settings, celery, content: bytes) -> str:
    """Store ``content`` and queue its job as the API would had its sniffer let it through."""
    job_id = jobs.new_id()
    (settings.storage_dir / f"{job_id}.mp3").write_bytes(content)
    store.create("job", job_id, source={"kind": "upload", "title": "stored", "duration_s": None},
                 cached=False, progress={"done": 0, "total": 0},
                 request={"upload": f"{job_id}.mp3", "content_key": content_keys.upload(hashlib.sha256(content).hexdigest()),
                          "model_version": registry.model_version(store.redis)})
    celery.send_task(ANALYZE, args=[job_id], task_id=job_id)
    return f"/api/v1/jobs/{job_id}"


def wait_all(client, locations: list[str], timeout: float) -> list[dict]:
    deadline, bodies = time.monotonic() + timeout, {}
    while len(bodies) < len(locations) and time.monotonic() < deadline:
        for location in locations:
            if location not in bodies:
                body = client.get(location).get_json()
                if jobs.is_finished(body):
                    bodies[location] = body
        time.sleep(0.2)
    assert len(bodies) == len(locations), f"{len(locations) - len(bodies)} jobs did not end in {timeout} s"
    return [bodies[location] for location in locations]


@pytest.fixture(scope="module")
def corpus(settings, worker, store, canary, audio_server, tmp_path_factory):
    from api import create_app

    client = create_app(settings).test_client()
    song, targets, copies = canary
    folder = tmp_path_factory.mktemp("hostile")
    cases = upload_cases(targets, genuine_files(folder), media_files(folder))

    locations, submitted = [], []
    for case in cases:
        response = post_file(client, case.content, case.filename)
        case.outcome = {"http": response.status_code, "body": response.get_json()}
        if response.status_code == 202:
            locations.append(response.headers["Location"])
            submitted.append(case)

    celery = make_celery(settings)
    stored = {label: queue_stored(store, settings, celery, id3() + hls(target)) for label, target in targets.items()}
    stored["missing-file"] = queue_stored(store, settings, celery, id3() + hls("/nonexistent/nothing.mp3"))
    stored["ffconcat"] = queue_stored(store, settings, celery, ffconcat(targets["absolute"]))
    stored["hls-bare"] = queue_stored(store, settings, celery, hls(targets["absolute"], repeat=200))
    stored["sdp"] = queue_stored(store, settings, celery, SDP)
    celery.close()

    root, base = audio_server
    (root / "hostile-x.mp3").write_bytes(id3() + hls(targets["absolute"]))
    (root / "hostile-segment.m4a").write_bytes(id3() + hls(targets["absolute"]))
    (root / "hostile.mpd").write_bytes(dash_mpd("hostile-segment.m4a").replace(
        b'mimeType="audio/mpeg"', b'mimeType="audio/mp4" codecs="mp4a.40.2" audioSamplingRate="44100"'))
    # An AES-128 key line (then none) makes yt-dlp hand the HLS download to ffmpeg when pycryptodomex
    # is absent; ffmpeg must not open a file: segment from an http playlist (nor yt-dlp itself).
    (root / "hostile.m3u8").write_bytes(hls(f"file:{song}").replace(
        b"#EXTINF", b'#EXT-X-KEY:METHOD=AES-128,URI="key.bin"\n#EXT-X-KEY:METHOD=NONE\n#EXTINF', 1))
    (root / "key.bin").write_bytes(b"k" * 16)
    links = {name: client.post("/api/v1/jobs", json={"url": f"{base}/{name}"}).headers["Location"]
             for name in ("hostile-x.mp3", "hostile.mpd", "hostile.m3u8")}

    everything = locations + list(stored.values()) + list(links.values())
    ended = dict(zip(everything, wait_all(client, everything, timeout=300)))
    for case, location in zip(submitted, locations):
        case.outcome["job"] = ended[location]
    for copy in copies:  # the folders are checked next; the canary was needed only while jobs ran
        copy.unlink(missing_ok=True)
    return {"cases": cases, "stored": {k: ended[v] for k, v in stored.items()},
            "links": {k: ended[v] for k, v in links.items()}}


def ending(job: dict) -> str:
    """"succeeded", or the code of the job's error."""
    return job["status"] if job["status"] == "succeeded" else job["error"]["code"]


def answer(case: Case) -> int | str:
    """What the service answered: the HTTP status if refused, else the job's end."""
    return case.outcome["http"] if case.outcome["http"] != 202 else ending(case.outcome["job"])


def all_jobs(corpus) -> list[dict]:
    uploads = [case.outcome["job"] for case in corpus["cases"] if "job" in case.outcome]
    return uploads + list(corpus["stored"].values()) + list(corpus["links"].values())


def test_the_corpus_is_large_enough(corpus):
    assert len(corpus["cases"]) >= 60


def test_each_upload_gets_its_expected_answer(corpus):
    wrong = {case.name: (case.expect, answer(case)) for case in corpus["cases"] if answer(case) != case.expect}
    assert wrong == {}


def test_refused_uploads_say_unsupported_media_type(corpus):
    codes = {case.outcome["body"]["error"]["code"] for case in corpus["cases"] if case.outcome["http"] == REFUSED}
    assert codes == {"unsupported_media_type"}


def test_each_genuine_upload_analysed_its_own_audio(corpus):
    analysed = {case.name: (case.seconds, case.outcome["job"]["result"]["duration_s"]) for case in corpus["cases"]
                if case.expect == answer(case) == "succeeded"}
    assert {name: lengths for name, lengths in analysed.items() if abs(lengths[0] - lengths[1]) > 0.1} == {}


def test_no_job_analysed_the_canary(corpus):
    lengths = [job["result"]["duration_s"] for job in all_jobs(corpus) if job["status"] == "succeeded"]
    assert [seconds for seconds in lengths if seconds > 2 * GENUINE_SECONDS] == []


def test_hostile_files_that_reach_the_worker_fail_as_unsupported_audio(corpus):
    codes = {label: ending(job) for label, job in corpus["stored"].items()}
    assert codes == {label: "unsupported_audio" for label in corpus["stored"]}


def test_errors_do_not_tell_an_existing_file_from_a_missing_one(corpus):
    stored = corpus["stored"]
    assert stored["absolute"].get("error") == stored["missing-file"].get("error")


def test_a_hostile_file_behind_a_link_fails_as_unsupported_audio(corpus):
    assert ending(corpus["links"]["hostile-x.mp3"]) == "unsupported_audio"


def test_a_dash_manifest_whose_segment_is_a_playlist_fails_as_unsupported_audio(corpus):
    # yt-dlp would "fix" the DASH container with an ffmpeg that guesses formats; it must not.
    assert ending(corpus["links"]["hostile.mpd"]) == "unsupported_audio"


def test_an_hls_link_naming_a_local_file_is_not_downloaded(corpus):
    assert ending(corpus["links"]["hostile.m3u8"]) == "download_failed"


def test_error_messages_carry_no_path(corpus, settings):
    messages = [job["error"]["message"] for job in all_jobs(corpus) if job["status"] == "failed"]
    leaks = [m for m in messages if "canary" in m or str(settings.storage_dir) in m or "/tmp/" in m or "var/" in m]
    assert leaks == []


def test_error_messages_carry_no_memory_address(corpus):
    messages = [job["error"]["message"] for job in all_jobs(corpus) if job["status"] == "failed"]
    assert [m for m in messages if "0x" in m] == []


def test_the_worker_is_alive_after_the_corpus(corpus, worker):
    assert worker.poll() is None


def test_no_upload_or_work_folder_is_left_behind(corpus, settings):
    left = [p.name for folder in (settings.storage_dir, settings.work_dir) if folder.exists() for p in folder.iterdir()]
    assert left == []
