"""genre-classify as a user runs it: the installed console script."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("genre-classify")


def run(*args):
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "shared.engine.cli"]
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from conftest import make_audio

    folder = tmp_path_factory.mktemp("cli")
    good = make_audio(folder / "good.mp3", 7.0)
    bad = folder / "bad.mp3"
    bad.write_text("not audio")
    return good, bad


def test_json_prints_one_object_per_input_and_fails_if_any_failed(files):
    good, bad = files
    done = run("--json", good, bad, good)
    lines = done.stdout.splitlines()
    assert done.returncode == 1 and len(lines) == 3
    first, second, third = map(json.loads, lines)
    assert set(first) == {"path", "duration_s", "segments", "top5", "tags"}
    assert first["path"] == str(good) and first["segments"] == 2
    assert len(first["top5"]) == 5 and {"genre", "p"} == set(first["top5"][0])
    assert second == {"path": str(bad), "error": {"code": "unsupported_audio", "message": second["error"]["message"]}}
    assert third == first


def test_timeline_adds_each_segments_top5(files):
    good, _ = files
    result = json.loads(run("--json", "--timeline", good).stdout)
    assert len(result["timeline"]) == result["segments"] == 2
    assert result["timeline"][0]["start"] == 0.0 and len(result["timeline"][1]["top5"]) == 5
    assert "  0.0-" in run("--timeline", good).stdout.replace("    ", " ")


def test_all_good_files_exit_zero_with_a_readable_table(files):
    good, _ = files
    done = run(good)
    assert done.returncode == 0, done.stderr
    assert str(good) in done.stdout and "%" in done.stdout and "tags:" in done.stdout


def test_invalid_setting_is_a_usage_error(files, monkeypatch):
    good, _ = files
    monkeypatch.setenv("BATCH_SIZE", "many")
    done = run(good)
    assert done.returncode == 2 and "BATCH_SIZE" in done.stderr


def test_missing_model_file_is_reported_without_a_traceback(files, monkeypatch, tmp_path):
    good, _ = files
    monkeypatch.setenv("MODEL_PATH", str(tmp_path / "absent.pt"))
    done = run(good)
    assert done.returncode == 2 and "MODEL_PATH" in done.stderr and "Traceback" not in done.stderr


def test_cuda_on_a_machine_without_it_is_a_settings_error(files, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    good, _ = files
    monkeypatch.setenv("DEVICE", "cuda")
    done = run(good)
    assert done.returncode == 2 and "DEVICE=cuda" in done.stderr


def test_a_reader_that_stops_early_gets_no_traceback(files):
    good, _ = files
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "shared.engine.cli"]
    # As `genre-classify a b c | head -1`: the reader takes the first line and goes away.
    with subprocess.Popen(command + ["--json"] + [str(good)] * 3, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        first = json.loads(proc.stdout.readline())
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.wait(timeout=300)
    assert first["path"] == str(good)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_a_playlist_naming_a_song_is_refused_not_analysed(files, tmp_path):
    good, _ = files
    playlist = tmp_path / "x.mp3"
    playlist.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXTINF:30,\n"
                         + str(good).encode() + b"\n#EXT-X-ENDLIST\n")
    done = run("--json", playlist)
    assert json.loads(done.stdout)["error"]["code"] == "unsupported_audio"
