"""Settings come from the environment, with defaults and clear errors."""
from dataclasses import fields
from pathlib import Path

import pytest

from shared.service.settings import DEFAULT_HEAD, Settings, SettingsError, markdown


def test_defaults_without_environment():
    settings = Settings.from_env({})
    assert settings.device == "auto" and settings.batch_size == 0
    assert settings.model_path == DEFAULT_HEAD and settings.max_audio_seconds == 1200


def test_values_are_read_and_typed():
    settings = Settings.from_env({"BATCH_SIZE": "8", "MAX_AUDIO_SECONDS": "60.5", "MODEL_PATH": "/m.pt"})
    assert settings.batch_size == 8 and settings.max_audio_seconds == 60.5
    assert settings.model_path == Path("/m.pt")


@pytest.mark.parametrize("env, message", [
    ({"BATCH_SIZE": "lots"}, "BATCH_SIZE"),
    ({"BATCH_SIZE": "-1"}, "BATCH_SIZE"),
    ({"DEVICE": "tpu"}, "DEVICE"),
    ({"PRECISION": "fp8"}, "PRECISION"),
    ({"MIN_AUDIO_SECONDS": "0"}, "MIN_AUDIO_SECONDS"),
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
    ({"MAX_UPLOAD_MB": "0"}, "MAX_UPLOAD_MB"),
    ({"VISIBILITY_TIMEOUT_S": "200"}, "VISIBILITY_TIMEOUT_S"),
    ({"TASK_SOFT_TIME_LIMIT_S": "400"}, "TASK_SOFT_TIME_LIMIT_S"),
    ({"RATE_LIMIT_PER_MINUTE": "-1"}, "RATE_LIMIT_PER_MINUTE"),
])
def test_bad_values_are_refused_with_the_variable_name(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_allowed_hosts_and_extractors_are_comma_separated_lists():
    settings = Settings.from_env({"ALLOWED_URL_HOSTS": " YouTu.be , 127.0.0.1,", "ALLOWED_EXTRACTORS": "youtube, generic"})
    assert settings.url_hosts == {"youtu.be", "127.0.0.1"}
    assert settings.extractors == ["youtube", "generic"]


def test_the_configuration_page_is_the_one_the_settings_generate():
    page = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
    assert page.read_text() == markdown(), "run: python -m shared.service.settings > docs/configuration.md"


def test_the_configuration_page_lists_every_setting():
    listed = {line.split("`")[1] for line in markdown().splitlines() if line.startswith("| `")}
    assert listed == {f.name.upper() for f in fields(Settings)}
