"""A real HTTP server on 127.0.0.1 serving fixed bytes per path, for registry/download tests.

Supports `Range: bytes=N-` (206 answers) and can break the first answer for a path after a
number of bytes (`cut_first`), to exercise resumable downloads.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serve_files(
    files: dict[str, bytes], *, cut_first: dict[str, int] | None = None, ranges: bool = True
) -> Iterator[tuple[str, list[str]]]:
    """Yields (base_url, request_log); the log holds "PATH" or "PATH range=N-" per request."""
    requests: list[str] = []
    cuts = dict(cut_first or {})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = files.get(self.path)
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            requests.append(self.path + (f" range={match.group(1)}-" if match else ""))
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(match.group(1)) if match and ranges else 0
            if start >= len(body) and start:
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            cut = cuts.pop(self.path, None)
            if cut is not None:
                self.wfile.write(body[start : start + cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start:])

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
