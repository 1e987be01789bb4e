"""OpenAI-compatible speech backend against a real local HTTP server that returns a WAV."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from avatarbot.errors import ExternalServiceError, InvalidInput
from avatarbot.pipeline.tts.openai_speech import OpenAISpeechTTS


@pytest.fixture
def speech_server():
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            if body["voice"] == "broken":
                payload, status, ctype = b'{"error": "bad voice"}', 400, "application/json"
            else:
                t = np.arange(12000) / 24000
                buf = io.BytesIO()
                sf.write(
                    buf, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 24000, format="WAV"
                )
                payload, status, ctype = buf.getvalue(), 200, "audio/wav"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_synthesize_posts_the_openai_body_and_decodes_wav(speech_server):
    base, seen = speech_server
    tts = OpenAISpeechTTS(base, api_key="sk-test-secret", model="tts-1-hd")
    assert tts.availability().ok
    result = tts.synthesize("Hello there", voice="nova", speed=1.25, language="en")
    assert result.sample_rate == 24000 and result.duration == pytest.approx(0.5)
    assert np.abs(result.samples).max() == pytest.approx(0.3, abs=0.01)
    assert seen[0]["path"] == "/v1/audio/speech"
    assert seen[0]["auth"] == "Bearer sk-test-secret"
    assert {k: seen[0][k] for k in ("model", "input", "voice", "response_format", "speed")} == {
        "model": "tts-1-hd", "input": "Hello there", "voice": "nova",
        "response_format": "wav", "speed": 1.25,
    }  # fmt: skip
    OpenAISpeechTTS(f"{base}/v1/").synthesize("x")  # base URL given with /v1 works too
    assert seen[1]["path"] == "/v1/audio/speech" and seen[1]["auth"] is None


def test_errors_are_clear_and_keep_the_key_out(speech_server):
    base, _ = speech_server
    tts = OpenAISpeechTTS(base, api_key="sk-test-secret")
    with pytest.raises(ExternalServiceError, match="HTTP 400") as err:
        tts.synthesize("hi", voice="broken")
    assert "sk-test-secret" not in str(err.value)
    with pytest.raises(InvalidInput):
        tts.synthesize("   ")
    with pytest.raises(ExternalServiceError, match="unreachable"):
        OpenAISpeechTTS("http://127.0.0.1:9", timeout=2).synthesize("hi")


def test_unconfigured_is_unavailable_with_reason():
    assert "openai_tts_base_url" in OpenAISpeechTTS("").availability().reason
