"""The worker's model: a pool process refuses a checkpoint other than the one its worker announced."""
from __future__ import annotations

import pytest

from shared.engine.model_version import model_version


@pytest.fixture
def worker_model(monkeypatch):
    from worker import model

    monkeypatch.setattr(model, "_classifier", None)
    return model


def test_a_pool_process_loads_the_model_its_worker_announced(worker_model, monkeypatch):
    monkeypatch.setattr(worker_model, "version", model_version(worker_model.settings.model_path))
    assert worker_model.get_classifier().version == worker_model.version


def test_a_pool_process_refuses_a_checkpoint_changed_since_the_worker_started(worker_model, monkeypatch):
    monkeypatch.setattr(worker_model, "version", "000000000000")
    with pytest.raises(worker_model.ModelUnavailable, match="MODEL_PATH changed"):
        worker_model.get_classifier()
