"""Keep the native libraries' log chatter (mediapipe, TensorFlow Lite, absl) off the terminal.

mediapipe 0.10 logs from C++ (absl/glog: "W0000 00:00:… landmark_projection_calculator.cc…",
"WARNING: All log messages before absl::InitializeLog()…") and TensorFlow Lite prints
"INFO: Created TensorFlow Lite XNNPACK delegate for CPU." straight to file descriptor 2. The
environment switches below quiet what honours them; the rest is caught by `quiet_native_stderr`,
which points fd 2 at a temporary file while a native call runs and then writes back every line
that is not such chatter, so real errors still reach the terminal.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

# Set before mediapipe / TensorFlow Lite are imported: only then are they read.
NATIVE_LOG_ENV = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2", "GRPC_VERBOSITY": "ERROR"}

# Lines written by native logging, never by us: glog/absl "W0000 00:00:… file.cc:12] …",
# TFLite "INFO: Created TensorFlow Lite …". Matched anywhere in a line, to its end: a progress
# bar redrawn with "\r" and no newline may sit in front of one.
NOISE = re.compile(
    rb"(?:[IWEF]\d{4} \d\d:\d\d:[\d.]+\s+\d+ [\w./-]+:\d+\]"
    rb"|INFO: Created TensorFlow Lite"
    rb"|INFO: Initialized TensorFlow Lite runtime"
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|(?:WARNING|INFO):absl:)[^\n]*(?:\n|$)"
)

_lock = threading.Lock()


def configure_native_logging() -> None:
    """Environment switches and absl's Python verbosity (call early; cheap, idempotent)."""
    for key, value in NATIVE_LOG_ENV.items():
        os.environ.setdefault(key, value)
    absl_logging = sys.modules.get("absl.logging")
    if absl_logging is not None:  # only when something already imported it: no new import
        absl_logging.set_verbosity(absl_logging.ERROR)


def filter_noise(data: bytes) -> bytes:
    """`data` without the lines native logging wrote."""
    return NOISE.sub(b"", data)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Run a native call with its stderr chatter dropped (other stderr output is kept).

    fd 2 is process-wide: while one call runs, other threads' stderr lines wait in the
    temporary file and come out when it ends. Calls are serialised so the swaps never nest.
    """
    configure_native_logging()
    with _lock:
        saved = _dup_stderr()
        if saved is None:  # no usable fd 2 (embedded interpreter, closed stream): run as is
            yield
            return
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                configure_native_logging()  # absl may have been imported by the call
                capture.seek(0)
                rest = filter_noise(capture.read())
                if rest:
                    with contextlib.suppress(OSError):
                        os.write(2, rest)


def _dup_stderr() -> int | None:
    try:
        sys.stderr.flush()
        return os.dup(2)
    except (OSError, ValueError, AttributeError):
        return None
