"""The genre head: training recipe, checkpoint round trip, the shipped head."""
import numpy as np
import pytest
import torch

from shared.engine.genre_model import MODEL_FORMAT, load_model, save_model
from shared.engine.head import GenreHead
from shared.engine.labels import GENRES
from shared.service.settings import DEFAULT_HEAD
from training.train_head import FOLDS, cross_validate, fit, segment_folds, track_scores


def synthetic_tags(tracks_per_genre=6, segments=5, seed=0):
    """Tag probabilities where each genre lifts its own tag: learnable but noisy."""
    rng = np.random.default_rng(seed)
    rows, labels, names = [], [], []
    for g in range(10):
        for t in range(tracks_per_genre):
            base = rng.uniform(0.01, 0.1, 50)
            base[g] = rng.uniform(0.5, 0.9)
            for _ in range(segments):
                rows.append(np.clip(base + rng.normal(0, 0.05, 50), 0.001, 0.999))
                labels.append(g)
                names.append(f"{GENRES[g]}.{t:05d}")
    return np.array(rows, np.float32), np.array(labels), np.array(names)


def test_fit_learns_a_separable_problem():
    tags, y, track = synthetic_tags()
    head = fit(tags, y, list(GENRES), penalty=1e-3)
    assert track_scores(head, tags, y, track)["top1"] > 0.95


def test_cross_validation_scores_held_out_tracks():
    tags, y, track = synthetic_tags()
    scores = cross_validate(tags, y, track, list(GENRES), penalty=1e-3)
    assert 0.8 < scores["top1"] <= 1.0 and scores["top5"] >= scores["top1"]


def test_folds_keep_each_track_whole_and_runs_of_track_numbers_together():
    _, y, track = synthetic_tags(tracks_per_genre=10)
    folds = segment_folds(y, track)
    for name in np.unique(track):
        assert len(set(folds[track == name])) == 1
    blues = [folds[track == f"blues.{t:05d}"][0] for t in range(10)]
    assert blues == sorted(blues) and set(blues) == set(range(FOLDS))


def test_checkpoint_round_trip_keeps_predictions(tmp_path):
    tags, y, _ = synthetic_tags(tracks_per_genre=2)
    head = fit(tags, y, list(GENRES), penalty=1e-2)
    path = tmp_path / "head.pt"
    save_model(head, path, kind="head", arch={"n_inputs": 50}, backbone="MSD_musicnn", metadata={"note": "test"})
    loaded, record = load_model(path)
    x = torch.from_numpy(tags)
    torch.testing.assert_close(loaded(x), head(x))
    assert record["backbone"] == "MSD_musicnn" and record["labels"] == list(GENRES)
    assert record["metadata"] == {"note": "test"} and isinstance(loaded, GenreHead)
    assert record["kind"] == "head" and not record["multi_label"] and record["temperature"] == 1.0
    assert len(record["version"]) == 12


def test_a_file_that_is_not_a_head_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a genre model checkpoint"):
        load_model(path)


def test_missing_head_names_the_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match="MODEL_PATH"):
        load_model(tmp_path / "absent.pt")


def test_shipped_head_is_trained_and_documents_its_recipe():
    head, record = load_model(DEFAULT_HEAD)
    assert record["labels"] == list(GENRES) and record["backbone"] == "MSD_musicnn"
    # Saved in the one checkpoint format: a single-label head on the 50 tags, served as trained.
    assert record["format"] == MODEL_FORMAT and record["kind"] == "head" and record["arch"] == {"n_inputs": 50}
    assert not record["multi_label"] and record["temperature"] == 1.0
    assert record["metadata"]["train_tracks"] > 400
    assert record["metadata"]["cv"]["top1"] > 0.8
    # A trained head is far from its initialisation: its weights carry real structure.
    assert head.linear.weight.abs().max() > 1.0
    assert isinstance(head, GenreHead)
