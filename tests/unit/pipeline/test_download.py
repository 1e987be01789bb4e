"""Resumable model download against a real local HTTP server (Range, dropped connections)."""

from __future__ import annotations

import hashlib
import os

import pytest

from avatarbot.pipeline.download import (
    ChecksumMismatch,
    DownloadError,
    download,
    file_sha256,
    part_path,
)
from tests.helpers.range_server import ServerState, range_server

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_plain_download_verifies_and_reports_progress(tmp_path):
    state = ServerState(files={"/m.bin": PAYLOAD})
    seen: list[tuple[int, int | None]] = []
    with range_server(state) as base:
        out = download(
            f"{base}/m.bin",
            tmp_path / "m.bin",
            sha256=SHA,
            progress=lambda d, t: seen.append((d, t)),
        )
    assert out.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert not part_path(out).exists()


def test_interrupted_then_resumed_with_range(tmp_path):
    state = ServerState(files={"/m.bin": PAYLOAD}, cut_after=100_000, cuts_left=1)
    dest = tmp_path / "models" / "m.bin"
    with range_server(state) as base:
        with pytest.raises(DownloadError, match="run it again to resume"):
            download(f"{base}/m.bin", dest, sha256=SHA, retries=0)
        assert not dest.exists()
        kept = part_path(dest).stat().st_size
        assert 0 < kept <= 100_000
        download(f"{base}/m.bin", dest, sha256=SHA, retries=0)
    assert dest.read_bytes() == PAYLOAD
    assert state.requests[-1] == ("/m.bin", f"bytes={kept}-")


def test_automatic_retry_resumes_after_a_drop(tmp_path):
    state = ServerState(files={"/m.bin": PAYLOAD}, cut_after=50_000, cuts_left=2)
    with range_server(state) as base:
        dest = download(f"{base}/m.bin", tmp_path / "m.bin", sha256=SHA, retries=3)
    assert file_sha256(dest) == SHA
    ranges = [r for _, r in state.requests]
    assert len(ranges) == 3 and ranges[0] is None
    assert all(r.startswith("bytes=") and r != "bytes=0-" for r in ranges[1:])


def test_server_without_range_support_restarts_cleanly(tmp_path):
    state = ServerState(files={"/m.bin": PAYLOAD}, honour_range=False)
    dest = tmp_path / "m.bin"
    part_path(dest).write_bytes(PAYLOAD[:1000] + b"garbage")
    with range_server(state) as base:
        download(f"{base}/m.bin", dest, sha256=SHA)
    assert dest.read_bytes() == PAYLOAD


def test_corrupted_download_fails_verification_and_is_discarded(tmp_path):
    corrupted = bytearray(PAYLOAD)
    corrupted[1234] ^= 0xFF
    state = ServerState(files={"/m.bin": bytes(corrupted)})
    dest = tmp_path / "m.bin"
    with range_server(state) as base, pytest.raises(ChecksumMismatch, match="does not match"):
        download(f"{base}/m.bin", dest, sha256=SHA)
    assert not dest.exists() and not part_path(dest).exists()


def test_http_error_is_reported(tmp_path):
    with range_server(ServerState()) as base, pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{base}/missing.bin?token=secret", tmp_path / "x.bin")
