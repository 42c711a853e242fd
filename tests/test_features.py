"""Segmenting: 187-frame patches, the tail rule and short-audio repeat padding."""
import numpy as np
import torch

from shared.engine.audio import SAMPLE_RATE
from shared.engine.features import HOP, PATCH_FRAMES, PATCH_SECONDS, fill_short, log_mel, patch_starts, segment


def noise(seconds: float) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE)).astype(np.float32) * 0.1


def test_patches_are_back_to_back_from_the_start():
    assert patch_starts(3 * PATCH_FRAMES) == [0, 187, 374]


def test_a_tail_of_half_a_patch_gets_an_end_aligned_patch():
    n = 2 * PATCH_FRAMES + PATCH_FRAMES // 2
    assert patch_starts(n) == [0, 187, n - PATCH_FRAMES]


def test_a_shorter_tail_is_dropped():
    assert patch_starts(2 * PATCH_FRAMES + PATCH_FRAMES // 2 - 1) == [0, 187]


def test_short_audio_is_repeated_to_fill_one_patch():
    clip = noise(1.0)
    filled = fill_short(clip)
    assert len(log_mel(torch.from_numpy(filled))) == PATCH_FRAMES
    np.testing.assert_array_equal(filled[: len(clip)], clip)
    np.testing.assert_array_equal(filled[len(clip): 2 * len(clip)], clip)


def test_segment_times_cover_the_song_and_stay_inside_it():
    song = noise(10.0)
    segments = segment(song)
    assert segments.patches.shape == (3, PATCH_FRAMES, 96)
    assert segments.start_s[0] == 0 and segments.end_s[-1] <= 10.0
    np.testing.assert_allclose(segments.start_s[1], PATCH_SECONDS)
    # 10 s leaves a 1 s tail: less than half a patch, so it is dropped.
    assert segments.end_s[-1] == segments.start_s[-1] + PATCH_SECONDS


def test_segment_of_short_audio_reports_its_real_duration():
    segments = segment(noise(1.5))
    assert segments.patches.shape[0] == 1
    assert segments.duration_s == 1.5 and segments.end_s[0] == 1.5


def test_log_mel_batches_match_single_signals():
    a, b = noise(3.0), noise(3.0)[::-1].copy()
    batch = log_mel(torch.from_numpy(np.stack([a, b])))
    torch.testing.assert_close(batch[1], log_mel(torch.from_numpy(b)))
    assert batch.shape == (2, 1 + len(a) // HOP, 96)
