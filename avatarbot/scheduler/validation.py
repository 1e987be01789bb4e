"""Checks on a schedule's cron, timezone, output and target; each failure is an InvalidInput (422)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from avatarbot.errors import InvalidInput

OUTPUT_KINDS = ("text", "markdown", "video")
PLATFORMS = ("feishu", "wecom", "wecom_bot", "webhook")
FEISHU_ROBOT_PATH = "/open-apis/bot/v2/hook/"
WECOM_ROBOT_PATH = "/cgi-bin/webhook/send"


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown timezone {name!r} (use an IANA name like Asia/Shanghai)"
        ) from None


WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: 0 = Sunday


def _crontab_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday) as the day names APScheduler understands.

    APScheduler's CronTrigger numbers weekdays from Monday = 0, even in from_crontab, so
    "1-5" there means Tuesday to Saturday. Everyone writing a crontab means Monday to Friday:
    we expand numeric weekdays to an explicit list of names. Names ("mon-fri") pass unchanged.
    """
    if field == "*" or any(c.isalpha() for c in field):
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = int(first_text), int(last_text)
        else:
            first = last = int(span)
        if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and step >= 1):
            raise ValueError(f"weekday {part!r} out of range (0-7, 0 and 7 = Sunday)")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(WEEKDAY_NAMES[day] for day in sorted(days))


def cron_trigger(cron: str, timezone: str) -> Any:
    """APScheduler CronTrigger for a 5-field crontab line; InvalidInput with the reason if bad."""
    from apscheduler.triggers.cron import CronTrigger

    tz = parse_timezone(timezone)
    text = (cron or "").strip()
    if len(text.split()) != 5:
        raise InvalidInput(
            f"invalid cron {cron!r}: expected 5 fields (minute hour day month weekday), "
            f"got {len(text.split())}"
        )
    minute, hour, day, month, weekday = text.split()
    try:
        weekdays = _crontab_weekdays(weekday)
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=weekdays, timezone=tz
        )
    except ValueError as exc:
        raise InvalidInput(f"invalid cron {cron!r}: {exc}") from None


def fire_times_between(
    trigger: Any, start: datetime, end: datetime, limit: int = 10000
) -> list[datetime]:
    """Fire times t with start <= t <= end (both aware datetimes)."""
    times: list[datetime] = []
    previous = None
    now = start
    while len(times) < limit:
        nxt = trigger.get_next_fire_time(previous, now)
        if nxt is None or nxt > end:
            break
        times.append(nxt)
        previous, now = nxt, nxt + timedelta(microseconds=1)
    return times


def next_runs(cron: str, timezone: str, n: int = 5, *, now: datetime) -> list[datetime]:
    """The next n fire times after `now` (for previews in the console)."""
    trigger = cron_trigger(cron, timezone)
    times: list[datetime] = []
    previous = None
    current = now
    for _ in range(max(0, min(n, 100))):
        nxt = trigger.get_next_fire_time(previous, current)
        if nxt is None:
            break
        times.append(nxt)
        previous, current = nxt, nxt + timedelta(microseconds=1)
    return times


def validate_output(output: str) -> str:
    if output not in OUTPUT_KINDS:
        raise InvalidInput(f"unknown output {output!r}; choose one of: {', '.join(OUTPUT_KINDS)}")
    return output


def robot_kind(url: str) -> str:
    """'feishu' or 'wecom' for a group-robot webhook URL; InvalidInput otherwise."""
    parsed = urlparse(url or "")
    # The URL is a credential (its key/token lets anyone post): never echo it in the message.
    # Control characters or spaces would only fail later, at delivery, inside httpx.
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.netloc
        or any(ch.isspace() or not ch.isprintable() for ch in url)
    ):
        raise InvalidInput("target url must be an http(s) URL of a group robot webhook")
    if parsed.path.startswith(FEISHU_ROBOT_PATH) and len(parsed.path) > len(FEISHU_ROBOT_PATH):
        return "feishu"
    if parsed.path.rstrip("/") == WECOM_ROBOT_PATH and parse_qs(parsed.query).get("key"):
        return "wecom"
    raise InvalidInput(
        "target url is not a Feishu or WeCom group robot webhook (expected "
        f"…{FEISHU_ROBOT_PATH}<token> or …{WECOM_ROBOT_PATH}?key=<key>)"
    )


def validate_target(target: dict[str, Any] | None) -> dict[str, Any]:
    """A cleaned copy of the target; InvalidInput naming the missing or wrong field."""
    if not isinstance(target, dict):
        raise InvalidInput("target is required: {platform: feishu|wecom|wecom_bot|webhook, ...}")
    platform = str(target.get("platform") or "")
    if platform not in PLATFORMS:
        raise InvalidInput(
            f"unknown target platform {platform!r}; choose one of: {', '.join(PLATFORMS)}"
        )
    chat_id = str(target.get("chat_id") or "").strip()
    user_id = str(target.get("user_id") or "").strip()
    url = str(target.get("url") or "").strip()
    if platform == "feishu":
        if not chat_id:
            raise InvalidInput("target platform feishu needs a chat_id")
        return {"platform": platform, "chat_id": chat_id}
    if platform == "wecom_bot":
        chat_type = str(target.get("chat_type") or "single").strip()
        if not chat_id:
            raise InvalidInput(
                "target platform wecom_bot needs a chat_id (a user id or a group chatid)"
            )
        if chat_type not in ("single", "p2p", "group"):  # p2p: as stored, on a re-check
            raise InvalidInput("target chat_type for wecom_bot must be 'single' or 'group'")
        return {
            "platform": platform,
            "chat_id": chat_id,
            "chat_type": "group" if chat_type == "group" else "p2p",
        }
    if platform == "wecom":
        if not (chat_id or user_id):
            raise InvalidInput("target platform wecom needs a chat_id or a user_id")
        cleaned = {"platform": platform}
        if chat_id:
            cleaned["chat_id"] = chat_id
        if user_id:
            cleaned["user_id"] = user_id
        return cleaned
    if not url:
        raise InvalidInput("target platform webhook needs the group robot's url")
    cleaned = {"platform": platform, "url": url, "robot": robot_kind(url)}
    secret = str(target.get("secret") or "").strip()
    if secret:  # a Feishu custom bot with signature verification on
        cleaned["secret"] = secret
    return cleaned
