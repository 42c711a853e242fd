"""genre-train's data side: indexes from folders and CSVs, splits without leakage, config, augmentation."""
from pathlib import Path

import pytest
import torch

from training.augment import mixup, spec_augment
from training.config import load_config
from training.data import build_index, split_by_lists, stratified_split


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture
def folder(tmp_path):
    """Three labels of six tracks each, plus a folder of non-audio that must be ignored."""
    for label in ("jazz", "metal", "pop"):
        for i in range(6):
            touch(tmp_path / label / f"{label}.{i:05d}.mp3")
    touch(tmp_path / "features" / "notes.txt")
    return tmp_path


def test_folder_index_labels_each_track_by_its_folder(folder):
    tracks = build_index(folder)
    assert len(tracks) == 18
    assert {t.labels for t in tracks} == {("jazz",), ("metal",), ("pop",)}
    assert all(t.path.parent.name == t.labels[0] for t in tracks)
    assert {t.id for t in tracks if t.labels == ("pop",)} == {f"pop.{i:05d}" for i in range(6)}


def test_csv_index_merges_several_labels_per_track(tmp_path):
    for name in ("a.mp3", "b.wav", "c.flac"):
        touch(tmp_path / "audio" / name)
    index = tmp_path / "index.csv"
    index.write_text("path,label,group\naudio/a.mp3,rock;indie,x\naudio/b.wav,jazz,y\naudio/a.mp3,live,x\n"
                     "audio/c.flac,jazz;rock,y\n")
    tracks = {t.id: t for t in build_index(index)}
    assert tracks["a"].labels == ("rock", "indie", "live")
    assert tracks["b"].labels == ("jazz",) and tracks["c"].labels == ("jazz", "rock")
    assert tracks["a"].path == (tmp_path / "audio" / "a.mp3").resolve()
    assert tracks["a"].group == "x"


def test_csv_without_a_label_column_is_refused(tmp_path):
    index = tmp_path / "index.csv"
    index.write_text("path,genre\na.mp3,rock\n")
    with pytest.raises(ValueError, match="path and label"):
        build_index(index)


def test_given_lists_keep_only_listed_tracks_on_their_side(folder):
    tracks = build_index(folder)
    train, valid = split_by_lists(tracks, {"jazz.00000", "pop.00001", "metal.00002"}, {"jazz.00003", "pop.00004"})
    assert [t.id for t in train] == ["jazz.00000", "metal.00002", "pop.00001"]
    assert [t.id for t in valid] == ["jazz.00003", "pop.00004"]
    with pytest.raises(ValueError, match="both lists"):
        split_by_lists(tracks, {"jazz.00000"}, {"jazz.00000"})


def test_stratified_split_holds_out_whole_tracks_of_every_label(folder):
    tracks = build_index(folder)
    kept, held = stratified_split(tracks, 1 / 3, seed=0)
    assert {t.path for t in kept}.isdisjoint(t.path for t in held)
    assert len(kept) + len(held) == len(tracks)
    for label in ("jazz", "metal", "pop"):
        assert sum(t.labels == (label,) for t in held) == 2
    # Another seed picks other tracks, still two of each label.
    _, other = stratified_split(tracks, 1 / 3, seed=3)
    assert {t.id for t in other} != {t.id for t in held} and len(other) == 6


def test_stratified_split_keeps_a_group_on_one_side(tmp_path):
    rows = ["path,label,group"]
    for i in range(12):
        touch(tmp_path / f"t{i}.mp3")
        rows.append(f"t{i}.mp3,{'ab'[i % 2]},artist{i // 4}")  # three artists of four tracks
    (tmp_path / "index.csv").write_text("\n".join(rows) + "\n")
    kept, held = stratified_split(build_index(tmp_path / "index.csv"), 0.3, seed=0)
    assert held and kept
    assert {t.group for t in kept}.isdisjoint(t.group for t in held)


def test_config_reads_yaml_then_set_overrides_with_types(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: cnn\nwidth: 8\nlr: 0.01\n")
    config = load_config(path, ["lr=3e-4", "multi_label=true", "depth=2"])
    assert (config.model, config.width, config.depth, config.lr, config.multi_label) == ("cnn", 8, 2, 3e-4, True)
    assert config.arch() == {"width": 8, "depth": 2, "dropout": 0.3}
    with pytest.raises(ValueError, match="unknown config keys: colour"):
        load_config(None, ["colour=red"])
    with pytest.raises(ValueError, match="model="):
        load_config(None, ["model=transformer"])


def test_spec_augment_masks_spans_with_the_segment_mean():
    x = torch.arange(2 * 50 * 20, dtype=torch.float32).reshape(2, 50, 20)
    generator = torch.Generator().manual_seed(0)
    masked = spec_augment(x, 1, 10, 1, 5, generator)
    assert masked.shape == x.shape and not torch.equal(masked, x)
    changed = masked != x
    # Every changed cell holds its segment's mean; whole rows (time) or columns (bands) change.
    for b in range(2):
        assert torch.all(masked[b][changed[b]] == x[b].mean())
    assert torch.equal(x, torch.arange(2 * 50 * 20, dtype=torch.float32).reshape(2, 50, 20))  # input untouched


def test_mixup_blends_inputs_and_targets_alike():
    x = torch.eye(4)
    y = torch.eye(4)
    mixed_x, mixed_y = mixup(x, y, 0.4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(mixed_x, mixed_y)  # x and y were equal, so they stay equal
    torch.testing.assert_close(mixed_y.sum(1), torch.ones(4))
    assert (mixed_y.max(1).values >= 0.5).all()


def test_a_list_naming_two_files_of_one_name_is_refused(tmp_path):
    from training.data import Track, select_ids

    tracks = [Track(tmp_path / "jazz" / "01.mp3", ("jazz",), "01"), Track(tmp_path / "rock" / "01.mp3", ("rock",), "01")]
    with pytest.raises(ValueError, match="matches both"):
        select_ids(tracks, {"01"}, "ids.txt")


def test_a_csv_with_a_byte_order_mark_or_missing_files_is_read_or_refused_clearly(tmp_path):
    from training.data import build_index

    (tmp_path / "a.mp3").write_bytes(b"x")
    (tmp_path / "bom.csv").write_text("path,label\na.mp3,jazz\n", encoding="utf-8-sig")
    assert [t.labels for t in build_index(tmp_path / "bom.csv")] == [("jazz",)]
    (tmp_path / "missing.csv").write_text("path,label\na.mp3,jazz\nb.mp3,rock\n")
    with pytest.raises(ValueError, match="1 listed file"):
        build_index(tmp_path / "missing.csv")
