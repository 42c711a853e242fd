"""The PyTorch musicnn matches the original TensorFlow outputs on the same input."""
import numpy as np
import pytest
import torch

from shared.engine.features import log_mel
from shared.engine.musicnn import load_pretrained

MODELS = ("MSD_musicnn", "MTT_musicnn")
OUTPUTS = ("tags", "penultimate", "max_pool", "mean_pool")
# Errors are scaled by max(1, |reference|): absolute below 1, relative above (pooled
# activations reach ~120). Tags and the penultimate layer match within 1e-4 (measured:
# 3e-6 and 1.1e-5). The pooled mid-end activations are sums of ~4000 float32 products:
# measured against a float64 run of the same weights, the TensorFlow reference is itself
# off by up to 8.8e-5 and our float32 by 4.8e-5, so the two may differ by ~1.3e-4.
TOLERANCE = {"tags": 1e-4, "penultimate": 1e-4, "max_pool": 2e-4, "mean_pool": 2e-4}
# One float16 step of the mel power moves log10(1 + 10000x) by at most ~4.3e-4.
FLOAT16_STEP = 5e-4


def scaled_error(ours: np.ndarray, reference: np.ndarray) -> float:
    return float((np.abs(ours - reference) / np.maximum(1.0, np.abs(reference))).max())


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    return request.param, load_pretrained(request.param)


def outputs(net, patches, **kwargs):
    with torch.inference_mode():
        return {k: v.numpy() for k, v in net.features(torch.from_numpy(patches), **kwargs).items()}


@pytest.mark.parametrize("output", OUTPUTS)
def test_outputs_match_tensorflow_on_committed_patches(model, small_fixture, output):
    name, net = model
    ours = outputs(net, small_fixture["patches"])[output]
    assert scaled_error(ours, small_fixture[f"{name}/{output}"]) < TOLERANCE[output]


@pytest.mark.parametrize("excerpt", ["synthetic", "rock.00001", "classical.00001"])
def test_outputs_match_tensorflow_on_full_golden_file(model, golden, excerpt):
    name, net = model
    ours = outputs(net, golden[f"{excerpt}/patches"])
    for output in OUTPUTS:
        assert scaled_error(ours[output], golden[f"{excerpt}/{name}/{output}"]) < TOLERANCE[output], output


def test_fast_layer_order_equals_reference_order(small_fixture):
    net = load_pretrained("MSD_musicnn")
    patches = small_fixture["patches"]
    fast, reference = outputs(net, patches), outputs(net, patches, reference_order=True)
    for output in OUTPUTS:
        np.testing.assert_allclose(fast[output], reference[output], rtol=1e-5, atol=1e-5)


def test_log_mel_matches_reference_on_committed_audio(small_fixture):
    ours = log_mel(torch.from_numpy(small_fixture["audio16k"])).numpy()
    reference = small_fixture["logmel"]
    assert np.abs(ours[: len(reference)] - reference).max() < FLOAT16_STEP


@pytest.mark.parametrize("excerpt", ["synthetic", "rock.00001", "classical.00001"])
def test_log_mel_matches_reference_on_full_golden_file(golden, excerpt):
    ours = log_mel(torch.from_numpy(golden[f"{excerpt}/audio16k"])).numpy()
    reference = golden[f"{excerpt}/logmel"]
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < FLOAT16_STEP
    # Differences are rare float16 rounding flips, not a drift.
    assert np.mean(np.abs(ours - reference) > 1e-5) < 0.01


@pytest.mark.parametrize("name", MODELS)
def test_int8_front_end_stays_close_to_float32(small_fixture, name):
    net = load_pretrained(name)
    exact = outputs(net, small_fixture["patches"])["tags"]
    net.int8 = True
    quantised = outputs(net, small_fixture["patches"])["tags"]
    assert np.abs(quantised - exact).max() < 0.03
    assert (quantised.argmax(axis=1) == exact.argmax(axis=1)).all()


def test_int8_result_of_a_segment_does_not_depend_on_its_batch(small_fixture):
    net = load_pretrained("MSD_musicnn")
    net.int8 = True
    patches = small_fixture["patches"]
    together = outputs(net, patches)["tags"]
    alone = np.concatenate([outputs(net, patches[i:i + 1])["tags"] for i in range(len(patches))])
    np.testing.assert_allclose(together, alone, atol=1e-6)
