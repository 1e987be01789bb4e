"""Render the frames of one clip in two processes: this one draws the even frames, a forked
helper the odd ones, and they come out in order.

Why a process and not a thread: half of a procedural frame is NumPy calls on small arrays, which
hold the GIL, so two threads draw no faster than one (measured: slower). A forked helper shares
everything already built (the rig, the portrait, the motion curves) copy-on-write and needs no
set-up; each frame is a pure function of its index, so either process may draw any frame and the
video is the same (a test checks it byte for byte).

The protocol is two pipes and a small ring of frame slots in shared memory:
- the parent hands out slot credits (one byte each) and reads one byte per finished odd frame;
- the helper waits for a credit, draws its next odd frame into the slot, then writes one byte.
Nothing is lost whatever dies first: the helper exits when the parent's end of a pipe closes
(the parent ended, or was killed); if the helper dies, or sends nothing for STALL_S (a fork
taken while another thread held a lock the helper then needs would hang it), the parent kills
it and draws the frames it was owed itself. The helper runs nothing but the frame function: no logging, no I/O, no locks.

`AVATARBOT_PIPELINE__RENDER_PROCESSES=1` (pipeline.render_processes) turns the helper off
(default 2 where the machine has two cores and `os.fork` exists).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import signal
from collections.abc import Callable, Iterator

import numpy as np

SLOTS = 4  # frames the helper may be ahead of the encoder
STALL_S = 20.0  # no frame from the helper for this long: it is stuck, draw its frames here
MIN_FRAMES = 25  # shorter clips: forking is not worth it (a second of video)
ENV = "AVATARBOT_PIPELINE__RENDER_PROCESSES"


_configured: int | None = None  # pipeline.render_processes, set by the pipeline bootstrap


def configure(processes: int) -> None:
    global _configured
    _configured = int(processes)


def render_processes() -> int:
    """Processes that draw frames: 1 or 2 (the setting, bounded by the cores and the OS)."""
    try:
        wanted = int(os.environ.get(ENV) or _configured or 2)
    except ValueError:
        wanted = 2
    if not hasattr(os, "fork") or (os.cpu_count() or 1) < 2:
        return 1
    return 2 if wanted >= 2 else 1


def farm_frames(
    draw: Callable[[int], np.ndarray], n: int, shape: tuple[int, int, int]
) -> Iterator[np.ndarray]:
    """draw(0) ... draw(n - 1) in order, the odd ones drawn by a forked helper.

    `draw` must be a pure function of the index returning uint8 frames of `shape`."""
    if n < MIN_FRAMES or render_processes() < 2:
        for i in range(n):
            yield draw(i)
        return
    size = int(np.prod(shape))
    ring = mmap.mmap(-1, size * SLOTS)  # anonymous and shared: the helper writes, we read
    credit_r, credit_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the helper
        _keep_only_fds(credit_r, ready_w)
        _helper(draw, n, shape, ring, credit_r, ready_w)  # never returns
    os.close(credit_r)
    os.close(ready_w)
    helper_alive = True
    try:
        os.write(credit_w, b"x" * SLOTS)
        for i in range(n):
            if i % 2 == 0 or not helper_alive:
                yield draw(i)
                continue
            if not _frame_ready(ready_r):  # the helper died or hangs: draw its frames here
                helper_alive = False
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                yield draw(i)
                continue
            slot = (i // 2) % SLOTS
            frame = np.frombuffer(ring, np.uint8, size, slot * size).reshape(shape).copy()
            with contextlib.suppress(OSError):
                os.write(credit_w, b"x")
            yield frame
    finally:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        for fd in (credit_w, ready_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        ring.close()


def _frame_ready(ready_r: int) -> bool:
    # poll, not select: a busy server has descriptors past select's limit of 1024
    poller = select.poll()
    poller.register(ready_r, select.POLLIN)
    if not poller.poll(STALL_S * 1000):
        return False
    return os.read(ready_r, 1) == b"x"


def _keep_only_fds(*keep: int) -> None:
    """Close every inherited descriptor but ours (and stdio): holding another render's ffmpeg
    stdin open would keep that ffmpeg waiting for the end of its input until we exit."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max(1 << 16, os.sysconf("SC_OPEN_MAX")))


def _helper(
    draw: Callable[[int], np.ndarray],
    n: int,
    shape: tuple[int, int, int],
    ring: mmap.mmap,
    credit_r: int,
    ready_w: int,
) -> None:
    """Draw frames 1, 3, 5, ... into the ring; exit when done or when the parent is gone."""
    code = 0
    try:
        size = int(np.prod(shape))
        for i in range(1, n, 2):
            if os.read(credit_r, 1) != b"x":  # the parent closed its end: stop
                break
            frame = np.ascontiguousarray(draw(i), dtype=np.uint8)
            slot = (i // 2) % SLOTS
            np.frombuffer(ring, np.uint8, size, slot * size)[:] = frame.reshape(-1)
            os.write(ready_w, b"x")
    except BaseException:  # the parent draws what is left (and meets the same error, if any)
        code = 1
    finally:
        os._exit(code)  # no atexit handlers, no flushing of the parent's buffers
