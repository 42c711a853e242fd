"""The inference API: per-segment and aggregated genres and tags for a whole song."""
import numpy as np
import pytest
import torch

from shared.engine.audio import SAMPLE_RATE
from shared.engine.inference import resolve_precision
from shared.engine.labels import GENRES, MSD_TAGS
from shared.engine.inference import DeviceUnavailable


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    from conftest import make_audio
    from shared.engine.audio import decode

    return decode(make_audio(tmp_path_factory.mktemp("song") / "song.mp3", 10.0), max_seconds=1200.0, min_seconds=1.0)


def test_predicts_per_segment_probabilities(classifier, song):
    prediction = classifier.predict(song)
    assert prediction.genre_probs.shape == (3, len(GENRES))
    assert prediction.tag_probs.shape == (3, len(MSD_TAGS))
    np.testing.assert_allclose(prediction.genre_probs.sum(axis=1), 1.0, rtol=1e-5)
    assert ((prediction.tag_probs > 0) & (prediction.tag_probs < 1)).all()


def test_top5_is_the_ranked_mean_of_segments(classifier, song):
    prediction = classifier.predict(song)
    top5 = prediction.top_genres(5)
    assert len(top5) == 5 and [g["p"] for g in top5] == sorted((g["p"] for g in top5), reverse=True)
    mean = prediction.genre_probs.mean(axis=0)
    assert top5[0]["genre"] == GENRES[int(mean.argmax())]
    assert top5[0]["p"] == pytest.approx(float(mean.max()), abs=1e-4)


def test_result_dict_has_segments_with_times_and_top5(classifier, song):
    result = classifier.predict(song).to_dict(top_tags=4)
    assert set(result) == {"duration_s", "segment_seconds", "top5", "tags", "segments"}
    assert len(result["tags"]) == 4 and {"tag", "p"} == set(result["tags"][0])
    assert [s["start"] for s in result["segments"]] == pytest.approx([0, 2.992, 5.984])
    assert all(len(s["top5"]) == 5 for s in result["segments"])


def test_batches_do_not_change_the_result(classifier, song):
    one = classifier.predict(song)
    batch_size, classifier.batch_size = classifier.batch_size, 1
    try:
        single = classifier.predict(song)
    finally:
        classifier.batch_size = batch_size
    np.testing.assert_allclose(one.genre_probs, single.genre_probs, atol=1e-5)


def test_precomputed_patches_score_exactly_as_their_song(classifier, song):
    from shared.engine.features import segment

    prediction = classifier.predict(song)
    patches = segment(song, classifier.device).patches
    genre_probs, tag_probs = classifier.predict_patches(patches)
    assert np.array_equal(genre_probs, prediction.genre_probs) and np.array_equal(tag_probs, prediction.tag_probs)
    # The logits under it give the served probabilities, and others at another temperature.
    logits, _ = classifier.patch_logits(patches)
    assert np.array_equal(classifier.genre_probabilities(logits).cpu().numpy(), genre_probs)
    flat = classifier.genre_probabilities(logits, temperature=4.0).cpu().numpy()
    assert (flat.max(axis=1) < genre_probs.max(axis=1)).all()


def test_progress_starts_at_zero_and_reports_every_batch_up_to_the_total(classifier):
    song = np.random.default_rng(1).standard_normal(30 * SAMPLE_RATE).astype(np.float32) * 0.1
    seen = []
    classifier.predict(song, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 10) and seen[-1] == (10, 10)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) > 1


def test_model_info_names_backbone_head_version_and_precision(classifier):
    info = classifier.info
    assert info["name"].startswith("MSD_musicnn+") and len(info["version"]) == 12
    # The recorded arithmetic is the one the network runs.
    assert info["precision"] == classifier.precision == ("int8" if classifier.backbone.int8 else "fp32")


def test_auto_precision_takes_int8_on_a_cpu_only_where_int8_is_faster():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu, int8_faster=lambda: True) == "int8"
    assert resolve_precision("auto", cpu, int8_faster=lambda: False) == "fp32"
    assert resolve_precision("auto", cuda, int8_faster=lambda: True) == "fp32"


def test_an_asked_for_precision_is_kept_whatever_the_cpu_is_fast_at():
    cpu = torch.device("cpu")
    assert resolve_precision("int8", cpu, int8_faster=lambda: False) == "int8"
    assert resolve_precision("fp32", cpu, int8_faster=lambda: True) == "fp32"
    with pytest.raises(DeviceUnavailable, match="CPU only"):
        resolve_precision("int8", torch.device("cuda"))


def test_fp32_and_int8_agree_on_a_song(classifier, song):
    classifier.backbone.int8 = True
    try:
        quantised = classifier.predict(song)
        classifier.backbone.int8 = False
        exact = classifier.predict(song)
    finally:
        classifier.backbone.int8 = classifier.precision == "int8"
    np.testing.assert_allclose(quantised.genre_probs, exact.genre_probs, atol=0.05)
    assert quantised.top_genres(1)[0]["genre"] == exact.top_genres(1)[0]["genre"]
