"""genre-train end to end on generated audio: every model kind, checkpoints the service loads,
multi-label, resume, evaluate, tune, baseline and embed. Tiny configurations keep it quick."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.engine.genre_model import FRONTEND, load_model
from shared.engine.inference import GenreClassifier
from shared.engine.labels import MSD_TAGS
from shared.service.settings import DEFAULT_HEAD, Settings
from training.cli import main as genre_train

CLASSIFY = Path(sys.executable).with_name("genre-classify")
# The shipped head as first saved, in the "genre-head/1" format, byte for byte.
LEGACY_HEAD = Path(__file__).parent / "fixtures" / "legacy_gtzan_head.pt"
# Small and fast; a head needs a high learning rate to move in a few epochs.
TINY = ["--set", "epochs=4", "--set", "lr=0.05", "--set", "holdout=0.25", "--set", "batch_size=8"]
DECODE = Settings().decode_options  # the defaults, as genre-train decodes with in these tests


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two labels that sound different (low chord, fast beat / high chord, slow beat), four tracks each,
    as label folders and as a multi-label CSV; one cache for every run of this module."""
    from conftest import make_audio

    root = tmp_path_factory.mktemp("music")
    rows = ["path,label"]
    for label, pitch, beat in (("low", 0.5, 0.25), ("high", 2.0, 0.7)):
        (root / label).mkdir()
        for i in range(4):
            make_audio(root / label / f"{label}{i}.mp3", 6.0, pitch=pitch * (1 + 0.05 * i), beat=beat)
            # A second, overlapping label on half the tracks: "bright" on the higher-pitched ones.
            rows.append(f"{label}/{label}{i}.mp3,{label}" + (";bright" if i >= 2 else ""))
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    return {"folder": root, "csv": root / "index.csv", "cache": root.parent / "cache"}


def fit(dataset, out, *overrides, data="folder"):
    args = ["fit", "--data", str(dataset[data]), "--out", str(out), "--cache-dir", str(dataset["cache"]), *TINY]
    for item in overrides:
        args += ["--set", item]
    assert genre_train(args) == 0
    return out / "model.pt"


@pytest.fixture(scope="module")
def head_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "head"
    fit(dataset, out, "epochs=8", "patience=20")  # all eight epochs, whatever the holdout does
    return out


def test_fit_writes_checkpoint_report_plots_and_logs(head_run):
    for name in ("model.pt", "last.pt", "config.yaml", "split.json", "history.json", "report.json",
                 "confusion.png", "curves.png", "reliability.png"):
        assert (head_run / name).is_file(), name
    assert any((head_run / "tensorboard").iterdir())
    split = json.loads((head_run / "split.json").read_text())
    assert set(split["train"]).isdisjoint(split["holdout"]) and len(split["holdout"]) == 2
    record = torch.load(head_run / "model.pt", weights_only=True)
    assert record["format"] == "genre-model/1" and record["kind"] == "head"
    assert record["labels"] == ["high", "low"] and record["frontend"] == FRONTEND
    # A temperature is fitted on the holdout but, by default, not served.
    assert record["temperature"] == 1.0 and record["metadata"]["fitted_temperature"] > 0
    assert record["metadata"]["holdout"]["loss"] > 0
    history = record["metadata"]["history"]
    assert len(history) == 8 and history[-1]["train_loss"] < history[0]["train_loss"]
    report = json.loads((head_run / "report.json").read_text())
    assert report["tracks"] == 2 and set(report["per_label"]) == {"high", "low"}


def test_genre_classify_uses_the_trained_checkpoint(head_run, dataset, tmp_path):
    song = dataset["folder"] / "high" / "high1.mp3"
    command = [str(CLASSIFY)] if CLASSIFY.exists() else [sys.executable, "-m", "shared.engine.cli"]
    env = {**os.environ, "MODEL_PATH": str(head_run / "model.pt")}
    done = subprocess.run(command + ["--json", str(song)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {g["genre"] for g in result["top5"]} == {"high", "low"}
    assert sum(g["p"] for g in result["top5"]) == pytest.approx(1.0, abs=1e-3)
    assert len(result["tags"]) == 10 and {t["tag"] for t in result["tags"]} <= set(MSD_TAGS)


@pytest.mark.parametrize("kind", ["cnn", "finetune"])
def test_each_network_kind_trains_resumes_and_serves(kind, dataset, tmp_path, classifier):
    out = tmp_path / kind
    fit(dataset, out, f"model={kind}", "epochs=1", "width=4", "depth=2", "lr=0.001")
    assert genre_train(["fit", "--data", str(dataset["folder"]), "--out", str(out), "--resume",
                        "--set", "epochs=2", "--cache-dir", str(dataset["cache"])]) == 0
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    # The cosine schedule spans the new epoch count, so the resumed epoch still learns.
    assert history[0]["lr"] == pytest.approx(0.001) and history[1]["lr"] == pytest.approx(0.0005)

    # float32 like the reference below: "auto" times int8 against it, and either may win.
    trained = GenreClassifier(out / "model.pt", precision="fp32")
    assert trained.kind == kind and trained.head.labels == ["high", "low"]
    from shared.engine.audio import decode

    audio = decode(dataset["folder"] / "low" / "low0.mp3", **DECODE)
    prediction = trained.predict(audio)
    np.testing.assert_allclose(prediction.genre_probs.sum(axis=1), 1.0, rtol=1e-5)
    result = prediction.to_dict()
    assert set(result) == {"duration_s", "segment_seconds", "top5", "tags", "segments"}
    assert {g["genre"] for g in result["top5"]} == {"high", "low"}
    # Tags still come from the pretrained tagger, whatever the genre model.
    reference = classifier.predict(audio)  # the shipped head, float32
    np.testing.assert_allclose(prediction.tag_probs, reference.tag_probs, atol=1e-6)


def test_calibrate_serves_the_temperature_fitted_on_the_holdout(dataset, tmp_path):
    record = torch.load(fit(dataset, tmp_path / "calibrated", "epochs=2", "calibrate=true"), weights_only=True)
    assert record["temperature"] == record["metadata"]["fitted_temperature"] > 0


def test_resuming_with_another_model_or_split_is_refused(head_run, dataset, capsys):
    for change in ("model=cnn", "holdout=0.5", "seed=7"):
        code = genre_train(["fit", "--data", str(dataset["folder"]), "--out", str(head_run), "--resume",
                            "--set", change, "--cache-dir", str(dataset["cache"])])
        assert code == 2 and "differ" in capsys.readouterr().err


def test_holdout_report_scores_only_holdout_tracks_when_file_names_repeat(tmp_path):
    from conftest import make_audio

    root = tmp_path / "music"
    for label, pitch in (("low", 0.5), ("high", 2.0)):
        for i in range(4):
            (root / label).mkdir(parents=True, exist_ok=True)
            make_audio(root / label / f"{i:02d}.mp3", 4.0, pitch=pitch * (1 + 0.05 * i))  # same names in both
    out = tmp_path / "run"
    assert genre_train(["fit", "--data", str(root), "--out", str(out), *TINY, "--set", "epochs=2"]) == 0
    split = json.loads((out / "split.json").read_text())
    assert set(split["train_paths"]).isdisjoint(split["holdout_paths"])
    assert json.loads((out / "report.json").read_text())["tracks"] == len(split["holdout_paths"]) == 2


def test_multi_label_fit_from_csv_gives_one_sigmoid_per_label(dataset, tmp_path):
    model = fit(dataset, tmp_path / "multi", "multi_label=true", "epochs=6", data="csv")
    classifier = GenreClassifier(model)
    assert classifier.head.multi_label and classifier.head.labels == ["bright", "high", "low"]
    from shared.engine.audio import decode

    from shared.engine.features import segment

    audio = decode(dataset["folder"] / "high" / "high3.mp3", **DECODE)
    prediction = classifier.predict(audio)
    # Independent sigmoids of the (temperature-scaled) logits, not a softmax.
    logits, _ = classifier.segment_logits(segment(audio).patches)
    expected = torch.sigmoid(logits / classifier.temperature).numpy()
    assert prediction.genre_probs.shape == expected.shape == (2, 3)
    np.testing.assert_allclose(prediction.genre_probs, expected, atol=1e-5)
    report = json.loads((tmp_path / "multi" / "report.json").read_text())
    assert set(report["per_label"]) == {"bright", "high", "low"} and "confusion" not in report


def test_a_single_label_fit_refuses_tracks_with_several_labels(dataset, tmp_path, capsys):
    args = ["fit", "--data", str(dataset["csv"]), "--out", str(tmp_path / "x"), *TINY]
    assert genre_train(args) == 2
    assert "multi_label=true" in capsys.readouterr().err


def test_evaluate_writes_report_with_calibration_and_plots(head_run, dataset, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("low0\nlow1\nhigh0\n")
    out = tmp_path / "eval"
    assert genre_train(["evaluate", "--model", str(head_run / "model.pt"), "--data", str(dataset["folder"]),
                        "--list", str(ids), "--out", str(out), "--cache-dir", str(dataset["cache"])]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["tracks"] == 3 and report["per_label"]["low"]["tracks"] == 2
    matrix = np.array(report["confusion"]["rows_true_cols_predicted"])
    assert matrix.sum() == 3 and report["top1"] == pytest.approx(np.trace(matrix) / 3)
    assert report["per_label"]["low"]["recall"] == pytest.approx(matrix[1, 1] / 2)  # labels are sorted: high, low
    assert 0 <= report["macro_f1"] <= 1 and 0 <= report["ece"] <= 1 and 0 <= report["without_temperature"]["ece"] <= 1
    assert report["model"]["temperature"] == pytest.approx(torch.load(head_run / "model.pt")["temperature"])
    for name in ("confusion.png", "reliability.png", "curves.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_the_original_head_format_loads_unchanged():
    from shared.engine.model_version import model_version

    head, original = load_model(LEGACY_HEAD)
    model, record = load_model(DEFAULT_HEAD)  # the same weights, re-saved as "genre-model/1"
    tags = torch.rand(4, 50)
    torch.testing.assert_close(model(tags), head(tags))
    assert original["format"] == "genre-head/1" and record["format"] == "genre-model/1"
    assert original["kind"] == "head" and original["temperature"] == 1.0 and not original["multi_label"]
    assert original["version"] == model_version(LEGACY_HEAD) == "c92861c580f1" != record["version"]
    assert {k: original[k] for k in ("labels", "backbone", "metadata", "arch", "frontend")} == \
        {k: record[k] for k in ("labels", "backbone", "metadata", "arch", "frontend")}


def test_a_checkpoint_from_other_log_mel_settings_is_refused(head_run, tmp_path):
    record = torch.load(head_run / "model.pt", weights_only=True)
    record["frontend"] = {**record["frontend"], "n_mels": 128}
    torch.save(record, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="log-mel settings"):
        load_model(tmp_path / "other.pt")


def test_tune_runs_trials_and_writes_the_best_config(dataset, tmp_path):
    out = tmp_path / "study"
    assert genre_train(["tune", "--data", str(dataset["folder"]), "--out", str(out), "--trials", "2",
                        "--cache-dir", str(dataset["cache"]), *TINY, "--set", "epochs=2"]) == 0
    assert (out / "study.db").is_file() and (out / "trial_000" / "model.pt").is_file()
    assert (out / "trial_001" / "model.pt").is_file()
    import yaml

    best = yaml.safe_load((out / "best_config.yaml").read_text())
    losses = {i: torch.load(out / f"trial_{i:03d}" / "model.pt", weights_only=True)["metadata"]["holdout"]["loss"]
              for i in (0, 1)}
    winner = yaml.safe_load((out / f"trial_{min(losses, key=losses.get):03d}" / "config.yaml").read_text())
    assert best["epochs"] == 2 and {k: best[k] for k in ("lr", "weight_decay", "mixup")} == \
        {k: winner[k] for k in ("lr", "weight_decay", "mixup")}
    # The study is on disk: running again continues it.
    assert genre_train(["tune", "--data", str(dataset["folder"]), "--out", str(out), "--trials", "1",
                        "--cache-dir", str(dataset["cache"]), *TINY, "--set", "epochs=2"]) == 0
    assert (out / "trial_002" / "model.pt").is_file()


def test_baseline_trains_and_scores_hand_crafted_features(dataset, tmp_path):
    out = tmp_path / "baseline"
    assert genre_train(["baseline", "--data", str(dataset["folder"]), "--out", str(out), "--holdout", "0.25",
                        "--cache-dir", str(dataset["cache"])]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["tracks"] == 2 and report["train_tracks"] == 6 and report["model"]["features"] > 50
    assert (out / "baseline.pkl").is_file() and (out / "confusion.png").is_file()


def test_embed_writes_one_backbone_embedding_per_file(dataset, tmp_path):
    out = tmp_path / "emb.npz"
    assert genre_train(["embed", "--data", str(dataset["folder"]), "--out", str(out),
                        "--cache-dir", str(dataset["cache"])]) == 0
    data = np.load(out)
    assert data["embeddings"].shape == (8, 200) and np.isfinite(data["embeddings"]).all()
    assert sorted(set(data["labels"])) == ["high", "low"] and str(data["layer"]) == "penultimate"
    # Tracks of one sound are closer to each other than to the other sound.
    e = data["embeddings"] / np.linalg.norm(data["embeddings"], axis=1, keepdims=True)
    same = data["labels"][:, None] == data["labels"][None, :]
    similarity = e @ e.T
    assert similarity[same & ~np.eye(8, dtype=bool)].mean() > similarity[~same].mean()


def test_a_worker_serves_the_trained_checkpoint(head_run, dataset, service_env):
    from stack import ARTIFACTS, finished, start_worker, stop, wait_for

    from api import create_app
    from shared.engine.model_version import model_version
    from shared.service import registry
    from shared.service.connection import connect

    # A Redis database of its own, so only this worker (with this model) takes the job.
    env = {**service_env, "REDIS_URL": service_env["REDIS_URL"].rsplit("/", 1)[0] + "/2",
           "MODEL_PATH": str(head_run / "model.pt")}
    settings = Settings.from_env(env)
    worker = start_worker(env, "custom@%h", ARTIFACTS / "worker-custom.log")
    try:
        wait_for(lambda: registry.live_workers(connect(settings.redis_url)), 60, "the worker with the trained model")
        client = create_app(settings).test_client()
        with open(dataset["folder"] / "low" / "low2.mp3", "rb") as f:
            location = client.post("/api/v1/jobs", data={"file": (f, "low2.mp3")},
                                   content_type="multipart/form-data").headers["Location"]
        job = finished(client, location)
    finally:
        stop(worker)
    assert job["status"] == "succeeded", job.get("error")
    assert {g["genre"] for g in job["result"]["top5"]} == {"high", "low"}
    assert job["result"]["model"]["version"] == model_version(head_run / "model.pt")


def test_a_bad_setting_in_the_environment_is_refused_before_any_work(dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MAX_AUDIO_SECONDS", "long")
    out = tmp_path / "emb.npz"
    assert genre_train(["embed", "--data", str(dataset["folder"]), "--out", str(out)]) == 2
    assert "MAX_AUDIO_SECONDS" in capsys.readouterr().err and not out.exists()
