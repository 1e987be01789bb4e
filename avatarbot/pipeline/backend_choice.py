"""Which animator and enhancer serve a mode, and why a better one was skipped.

The spec's table (INTERFACE.md, "Pipeline"):

    mode            animator                         enhancer (enhanced_* only)
    lipsync         wav2lip, else procedural          -
                    (mouth only, still head)
    talking_head    sadtalker, else procedural        -
                    (with head motion)
    enhanced_*      as above                          gfpgan, else detail (CPU)

"auto" walks this table; any other name is used as asked (an unknown name is the caller's
mistake: InvalidInput, 422; a known one without its files fails when the render starts).
The procedural animator reads the mode itself: it moves the head only for *talking_head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from avatarbot.errors import InvalidInput
from avatarbot.pipeline.types import Availability, Mode

AUTO = ("", "auto")
PREFERRED_ANIMATOR: dict[Mode, str] = {
    Mode.LIPSYNC: "wav2lip",
    Mode.ENHANCED_LIPSYNC: "wav2lip",
    Mode.TALKING_HEAD: "sadtalker",
    Mode.ENHANCED_TALKING_HEAD: "sadtalker",
}
FALLBACK_ANIMATOR = "procedural"
PREFERRED_ENHANCER = "gfpgan"
FALLBACK_ENHANCER = "detail"
NO_ENHANCER = "none"


@dataclass(frozen=True)
class BackendChoice:
    mode: Mode
    animator: str
    enhancer: str  # "none" when the mode does not enhance (or the caller asked for none)
    # better backend -> why it did not serve this mode here ("missing models/wav2lip/...")
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "animator": self.animator,
            "enhancer": self.enhancer,
            "skipped": dict(self.skipped),
        }


def _registered(stage: str) -> list[str]:
    if stage == "animator":
        from avatarbot.pipeline.animators import animator_names

        return animator_names()
    from avatarbot.pipeline.enhancers import enhancer_names

    return enhancer_names()


def _availability(stage: str, name: str) -> Availability | None:
    if stage == "animator":
        from avatarbot.pipeline.animators import animator_availability

        return animator_availability(name)
    from avatarbot.pipeline.enhancers import enhancer_availability

    return enhancer_availability(name)


def check_backend_name(stage: str, name: str | None) -> str:
    """`name` normalised ("auto" for empty); InvalidInput when no backend has that name."""
    value = (name or "auto").strip()
    if value in AUTO:
        return "auto"
    known = _registered(stage)
    allowed = [*known, NO_ENHANCER] if stage == "enhancer" else known
    if value not in allowed:
        choices = ", ".join(["auto", *allowed])
        raise InvalidInput(f"unknown {stage} backend {value!r} (known: {choices})")
    return value


def _best(stage: str, preferred: str, fallback: str, skipped: dict[str, str]) -> str:
    availability = _availability(stage, preferred)
    if availability is None:
        skipped[preferred] = "not registered in this process"
    elif availability.ok:
        return preferred
    else:
        skipped[preferred] = availability.reason or "unavailable"
    return fallback


def choose_backends(
    mode: str | Mode, animator: str | None = "auto", enhancer: str | None = "auto"
) -> BackendChoice:
    """The animator and enhancer that serve `mode` here, with the reasons for any fallback."""
    the_mode = Mode(mode)
    anim = check_backend_name("animator", animator)
    enh = check_backend_name("enhancer", enhancer)
    skipped: dict[str, str] = {}
    if anim == "auto":
        anim = _best("animator", PREFERRED_ANIMATOR[the_mode], FALLBACK_ANIMATOR, skipped)
    if not the_mode.enhanced:
        enh = NO_ENHANCER
    elif enh == "auto":
        enh = _best("enhancer", PREFERRED_ENHANCER, FALLBACK_ENHANCER, skipped)
    return BackendChoice(the_mode, anim, enh, skipped)


def choices_by_mode() -> dict[str, dict[str, Any]]:
    """For /health: what "auto" picks for every mode here, and why a better backend was skipped."""
    return {mode.value: choose_backends(mode).as_dict() for mode in Mode}
