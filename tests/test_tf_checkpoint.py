"""Our reader of TensorFlow checkpoints, on the checkpoints in the musicnn wheel."""
import pytest

from shared.engine.musicnn import MusicnnWeightsMissing, weights_dir
from shared.engine.tf_checkpoint import CheckpointError, read_checkpoint


def test_reads_every_musicnn_variable_with_its_shape():
    tensors = read_checkpoint(str(weights_dir("MSD_musicnn")) + "/")
    assert tensors["conv2d/kernel"].shape == (7, 38, 1, 204)
    assert tensors["conv2d_5/kernel"].shape == (7, 561, 1, 64)
    assert tensors["dense/kernel"].shape == (1506, 200)
    assert tensors["dense_1/bias"].shape == (50,)
    assert tensors["batch_normalization_10/moving_variance"].min() > 0


def test_rejects_a_file_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "x.index").write_bytes(b"not a table" * 10)
    (tmp_path / "x.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        read_checkpoint(tmp_path / "x")


def test_unknown_pretrained_name_is_refused():
    with pytest.raises(ValueError, match="MSD_musicnn"):
        weights_dir("MSD_big")


def test_missing_wheel_error_names_the_install_command(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MusicnnWeightsMissing, match="pip install --no-deps musicnn==0.1.0"):
        weights_dir("MSD_musicnn")
