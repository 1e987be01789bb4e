"""Voice API over the real app: synthesis to audio bytes, voices, profile CRUD with uploads."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from avatarbot.config import Settings
from avatarbot.pipeline.audio_io import encode_audio_bytes, ffmpeg_exe
from tests.conftest import make_settings, register_and_login

API = "/api/v1/voice"


def _speechlike(seconds: float = 3.0, sr: int = 16000, noise: float = 0.0) -> np.ndarray:
    """Syllable-like tone bursts with gaps (what a reference recording roughly looks like)."""
    t = np.arange(int(seconds * sr)) / sr
    envelope = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * envelope
    rng = np.random.default_rng(0)
    return (tone + rng.normal(0, noise, t.size)).astype(np.float32)


async def test_synthesize_wav_and_mp3(client: httpx.AsyncClient, admin_headers: dict) -> None:
    r = await client.post(
        f"{API}/synthesize",
        json={"text": "你好，欢迎使用数字人助手。Hello from avatarbot."},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    data, sr = soundfile.read(io.BytesIO(r.content))
    assert sr == 22050 and 3.0 < len(data) / sr < 7.0
    assert abs(float(r.headers["x-audio-duration"]) - len(data) / sr) < 0.01

    r = await client.post(
        f"{API}/synthesize",
        json={"text": "Hello", "format": "mp3", "speed": 1.5, "language": "en"},
        headers=admin_headers,
    )
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    assert r.content[:3] == b"ID3" or r.content[0] == 0xFF


async def test_synthesize_rejects_bad_input(client: httpx.AsyncClient, admin_headers: dict) -> None:
    for body, status in (
        ({"text": "   "}, 422),
        ({"text": "字" * 20_000}, 422),
        ({"text": "hi", "format": "flac"}, 422),
        ({"text": "hi", "speed": 9}, 422),
        ({"text": "hi", "voice": "no-such-voice"}, 422),
        ({"text": "hi", "backend": "nope"}, 422),  # unknown name: the caller's mistake
    ):
        r = await client.post(f"{API}/synthesize", json=body, headers=admin_headers)
        assert r.status_code == status, (body, r.text)
    r = await client.post(f"{API}/synthesize", json={"text": "字" * 20_000}, headers=admin_headers)
    assert "5000" in r.json()["detail"]


async def test_voice_routes_need_auth(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{API}/synthesize", json={"text": "hi"})).status_code == 401
    assert (await client.get(f"{API}/profiles")).status_code == 401


async def test_voices_and_backends(client: httpx.AsyncClient, admin_headers: dict) -> None:
    r = await client.get(f"{API}/voices", params={"language": "zh"}, headers=admin_headers)
    assert r.status_code == 200 and "cmn" in {v["id"] for v in r.json()}
    r = await client.get(f"{API}/backends", headers=admin_headers)
    assert {"name": "espeak", "available": True, "reason": ""} in r.json()


async def test_profile_crud_with_reference(
    client: httpx.AsyncClient, admin_headers: dict, settings: Settings, tmp_path: Path
) -> None:
    noisy = _speechlike(noise=0.02)
    upload = encode_audio_bytes(noisy, 16000, "mp3")
    r = await client.post(
        f"{API}/profiles",
        data={"name": "Narrator", "voice": "cmn", "params": json.dumps({"speed": 1.1})},
        files={"reference": ("ref.mp3", upload, "audio/mpeg")},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    profile = r.json()
    assert profile["has_reference"] and profile["params"] == {"speed": 1.1}
    quality = profile["quality"]
    assert quality["sample_rate"] == 22050 and quality["snr_db"] > quality["input_snr_db"]
    stored = settings.data_dir / "voices" / f"{profile['id']}.wav"
    data, sr = soundfile.read(stored)
    assert sr == 22050 and 2.5 < len(data) / sr < 3.2

    listed = (await client.get(f"{API}/profiles", headers=admin_headers)).json()
    assert [p["id"] for p in listed] == [profile["id"]]
    r = await client.get(f"{API}/profiles/{profile['id']}", headers=admin_headers)
    assert r.json()["name"] == "Narrator"

    r = await client.put(
        f"{API}/profiles/{profile['id']}",
        json={"name": "Narrator 2", "params": {"speed": 0.9, "pitch": 1.2}},
        headers=admin_headers,
    )
    assert r.status_code == 200 and r.json()["name"] == "Narrator 2"
    assert r.json()["params"] == {"speed": 0.9, "pitch": 1.2} and r.json()["voice"] == "cmn"
    r = await client.put(
        f"{API}/profiles/{profile['id']}", json={"params": {"speed": 99}}, headers=admin_headers
    )
    assert r.status_code == 422

    # The profile drives synthesis: espeak cannot clone, so its voice/params are what apply.
    r = await client.post(
        f"{API}/synthesize",
        json={"text": "你好", "profile_id": profile["id"]},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text

    r = await client.delete(f"{API}/profiles/{profile['id']}", headers=admin_headers)
    assert r.status_code == 204 and not stored.exists()
    r = await client.get(f"{API}/profiles/{profile['id']}", headers=admin_headers)
    assert r.status_code == 404


@pytest.fixture
def silent_video(tmp_path: Path) -> bytes:
    video = tmp_path / "novoice.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=32x32:d=1",
         "-c:v", "mpeg4", str(video)],
        check=True,
    )  # fmt: skip
    return video.read_bytes()


async def test_profile_without_reference_and_bad_uploads(
    client: httpx.AsyncClient, admin_headers: dict, silent_video: bytes
) -> None:
    r = await client.post(
        f"{API}/profiles", data={"name": "Plain", "language": "en"}, headers=admin_headers
    )
    assert r.status_code == 201 and not r.json()["has_reference"]
    assert r.json()["quality"] is None

    cases = [
        ({"name": "x", "params": "{not json"}, None, "params"),
        ({"name": "x", "params": "[1]"}, None, "JSON object"),
        ({"name": "x", "backend": "nope"}, None, "unknown TTS backend"),
        ({"name": "x", "voice": "no-such-voice-x"}, None, "unknown voice"),
        ({"name": "x"}, ("ref.mp3", b"not audio" * 50, "audio/mpeg"), "could not decode"),
        ({"name": "x"}, ("ref.wav", b"", "audio/wav"), "empty"),
        ({"name": "x"}, ("ref.wav", encode_audio_bytes(np.zeros(48000), 16000, "wav"), "audio/wav"), "silent"),
        ({"name": "x"}, ("ref.wav", encode_audio_bytes(_speechlike(0.8), 16000, "wav"), "audio/wav"), "too short"),
    ]  # fmt: skip
    for data, upload, message in cases:
        files = {"reference": upload} if upload else None
        r = await client.post(f"{API}/profiles", data=data, files=files, headers=admin_headers)
        assert r.status_code == 422, (data, r.text)
        assert message in r.json()["detail"], r.text

    # A video file with no sound track is refused too.
    r = await client.post(
        f"{API}/profiles",
        data={"name": "x"},
        files={"reference": ("v.mp4", silent_video, "video/mp4")},
        headers=admin_headers,
    )
    assert r.status_code == 422
    names = [p["name"] for p in (await client.get(f"{API}/profiles", headers=admin_headers)).json()]
    assert names == ["Plain"]  # nothing half-created


@asynccontextmanager
async def _client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from avatarbot.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_profiles_are_private(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"secret_key": "k" * 40, "open_registration": True})
    async with _client_for(settings) as client:
        admin = await register_and_login(client)
        other = await register_and_login(client, email="bob@example.com")
        r = await client.post(f"{API}/profiles", data={"name": "Mine"}, headers=other)
        profile_id = r.json()["id"]
        third = await register_and_login(client, email="eve@example.com")
        assert (await client.get(f"{API}/profiles", headers=third)).json() == []
        for method in ("GET", "DELETE"):
            r = await client.request(method, f"{API}/profiles/{profile_id}", headers=third)
            assert r.status_code == 404
        r = await client.put(f"{API}/profiles/{profile_id}", json={"name": "x"}, headers=third)
        assert r.status_code == 404
        r = await client.post(
            f"{API}/synthesize", json={"text": "hi", "profile_id": profile_id}, headers=third
        )
        assert r.status_code == 404
        # The owner and the superuser see it.
        for headers in (other, admin):
            r = await client.get(f"{API}/profiles/{profile_id}", headers=headers)
            assert r.status_code == 200


async def test_upload_size_limit(tmp_path: Path) -> None:
    async with _client_for(make_settings(tmp_path, pipeline={"max_upload_mb": 1})) as c:
        headers = await register_and_login(c)
        big = encode_audio_bytes(_speechlike(40.0), 16000, "wav")  # ~1.3 MB
        r = await c.post(
            f"{API}/profiles",
            data={"name": "big"},
            files={"reference": ("big.wav", big, "audio/wav")},
            headers=headers,
        )
        assert r.status_code == 413, r.text
