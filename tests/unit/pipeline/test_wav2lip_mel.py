"""Wav2Lip mel front end: shapes, scale, band placement and window chunking per io_contract.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avatarbot.pipeline.animators.wav2lip import mel as m

CONTRACT = json.loads(
    (Path(__file__).parents[2] / "helpers" / "manifests" / "io_contract.json").read_text()
)["wav2lip"]


def test_hyper_parameters_match_the_contract():
    c = CONTRACT["mel"]
    assert (
        c["sample_rate"], c["n_fft"], c["hop_size"], c["win_size"], c["num_mels"],
    ) == (m.SAMPLE_RATE, m.N_FFT, m.HOP, m.WIN, m.NUM_MELS)  # fmt: skip
    assert (c["fmin"], c["fmax"], c["preemphasis"]) == (m.FMIN, m.FMAX, m.PREEMPHASIS)
    assert (
        c["ref_level_db"], c["min_level_db"], c["max_abs_value"],
    ) == (m.REF_LEVEL_DB, m.MIN_LEVEL_DB, m.MAX_ABS_VALUE)  # fmt: skip
    assert CONTRACT["mel_step_size"] == m.MEL_STEP


def test_filterbank_is_slaney_triangles():
    fb = m.mel_filterbank()
    assert fb.shape == (80, 401)
    assert (fb >= 0).all() and (fb.sum(axis=1) > 0).all()
    freqs = np.linspace(0, 8000, 401)
    centres = freqs[fb.argmax(axis=1)]
    assert np.all(np.diff(centres) >= 0)  # bands ascend
    assert centres[0] < 120 and 7000 < centres[-1] <= 7600
    # Slaney area norm: peak = 2 / (upper - lower edge), so narrow low bands are taller.
    assert fb[0].max() > fb[-1].max() * 4


def test_shape_scale_and_tone_band():
    sr = 16000
    t = np.arange(sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    spec = m.melspectrogram(tone)
    assert spec.shape == (80, 1 + len(tone) // 200) == (80, 81)
    assert spec.dtype == np.float32 and spec.min() >= -4 and spec.max() <= 4
    band = spec[:, 40].argmax()
    fb_peak_hz = np.linspace(0, 8000, 401)[m.mel_filterbank()[band].argmax()]
    assert abs(fb_peak_hz - 1000) < 80
    silence = m.melspectrogram(np.zeros(sr))
    assert np.allclose(silence, -4.0)  # floor: 1e-5 amplitude -> -100 dB - 20 -> clipped to -4


def test_windows_follow_the_original_chunking():
    mel = np.arange(80 * 100, dtype=np.float32).reshape(80, 100)
    win = m.mel_windows(mel, n_frames=40, fps=25)
    assert win.shape == (40, 80, 16)
    np.testing.assert_array_equal(win[1], mel[:, 3:19])  # int(1 * 80 / 25) = 3
    np.testing.assert_array_equal(win[-1], mel[:, 84:100])  # clamped to the last 16 frames
    short = m.mel_windows(np.zeros((80, 5), np.float32), 2, 25)
    assert short.shape == (2, 80, 16)


def test_resampling_keeps_duration():
    out = m.to_16k_mono(np.zeros(22050, np.float32), 22050)
    assert len(out) == 16000
    with pytest.raises(ValueError):
        m.melspectrogram(np.zeros(0))


def test_stft_matches_scipy_on_the_same_padding():
    from scipy.signal import stft

    rng = np.random.default_rng(0)
    y = rng.standard_normal(16000)
    ours = m._stft_magnitude(y)
    padded = np.pad(y, m.N_FFT // 2, mode="reflect")
    _, _, ref = stft(
        padded, nperseg=m.WIN, noverlap=m.WIN - m.HOP, nfft=m.N_FFT, window="hann",
        boundary=None, padded=False, detrend=False,
    )  # fmt: skip
    ref = np.abs(ref) * np.hanning(m.WIN + 1)[:-1].sum()  # scipy scales by 1 / sum(window)
    assert ours.shape == ref.shape == (401, 81)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
