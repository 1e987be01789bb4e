from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from avatarbot.errors import InvalidInput
from avatarbot.plugins.manager import PluginManager

RATE = 22050


def tone(freq: float, seconds: float, amp: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def band_level(x: np.ndarray, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    freqs = np.fft.rfftfreq(x.size, 1 / RATE)
    return float(spectrum[np.abs(freqs - freq) < 20].max())


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12))


@pytest.fixture
def manager(tmp_path):
    """The plugin over AudioPreprocessor (pipeline.audio); EQ through ffmpeg."""
    mgr = PluginManager(tmp_path / "data")
    plugin = mgr.load_plugin("audio_enhancer")
    assert plugin.backend == "preprocessor"
    mgr.media_dir.mkdir(parents=True, exist_ok=True)
    yield mgr
    mgr.shutdown()


def test_normalize_reaches_target(manager):
    sf.write(manager.media_dir / "quiet.wav", tone(440, 2.0, 0.01), RATE)
    out = manager.call_tool(
        "audio_enhancer.normalize", input_path="quiet.wav", output_path="loud.wav", target_db=-20
    )
    audio, rate = sf.read(out["path"], dtype="float32")
    assert rate == RATE and out["duration"] == pytest.approx(2.0, abs=0.1)
    assert rms_db(audio) == pytest.approx(-20, abs=3)  # was -43 dBFS


def test_equalizer_boosts_the_chosen_band(manager):
    mix = tone(200, 2.0, 0.2) + tone(3000, 2.0, 0.2)
    sf.write(manager.media_dir / "mix.wav", mix, RATE)
    manager.call_tool(
        "audio_enhancer.equalize",
        input_path="mix.wav",
        output_path="eq.wav",
        bands=[{"frequency": 3000, "gain_db": 9, "width_q": 2}],
    )
    audio, _ = sf.read(manager.media_dir / "eq.wav", dtype="float32")
    before = band_level(mix, 3000) / band_level(mix, 200)
    after = band_level(audio, 3000) / band_level(audio, 200)
    assert after / before > 2.0  # +9 dB is x2.8 in amplitude
    with pytest.raises(InvalidInput, match="out of range"):
        manager.call_tool(
            "audio_enhancer.equalize",
            input_path="mix.wav",
            output_path="eq2.wav",
            bands=[{"frequency": 5, "gain_db": 3}],
        )


def test_denoise_lowers_the_noise_floor(manager):
    rng = np.random.default_rng(0)
    speechy = np.concatenate([np.zeros(RATE, np.float32), tone(300, 2.0, 0.3)])
    noisy = speechy + rng.normal(0, 0.02, speechy.size).astype(np.float32)
    sf.write(manager.media_dir / "noisy.wav", noisy, RATE)
    manager.call_tool(
        "audio_enhancer.denoise", input_path="noisy.wav", output_path="clean.wav", strength=0.9
    )
    audio, _ = sf.read(manager.media_dir / "clean.wav", dtype="float32")
    # The first second is pure noise: its level must drop clearly, the tone must survive.
    assert rms_db(audio[: RATE - 2000]) < rms_db(noisy[: RATE - 2000]) - 6
    assert band_level(audio[RATE + 2000 :], 300) > 0.5 * band_level(noisy[RATE + 2000 :], 300)


def test_enhance_trims_silence(manager):
    padded = np.concatenate([np.zeros(RATE), tone(300, 1.0, 0.3), np.zeros(RATE)])
    sf.write(manager.media_dir / "padded.wav", padded.astype(np.float32), RATE)
    out = manager.call_tool(
        "audio_enhancer.enhance", input_path="padded.wav", output_path="enh.wav", denoise=False
    )
    assert out["duration"] < 1.5
