from __future__ import annotations

import pytest

from avatarbot.agents.brains.rules import detect_language, match_intent


@pytest.mark.parametrize(
    ("text", "tool", "args"),
    [
        ("帮我生成一个视频，内容是大家好", "make_video", {"text": "大家好"}),
        ("生成一个视频说：欢迎新同事", "make_video", {"text": "欢迎新同事"}),
        ("做个视频 “周五下午茶”", "make_video", {"text": "周五下午茶"}),
        ("make a video saying hello team", "make_video", {"text": "hello team"}),
        ("Please create a short video that says: launch is on Monday", "make_video",
         {"text": "launch is on Monday"}),
        ("/video hi there", "make_video", {"text": "hi there"}),
        ("read this aloud: good morning", "speak", {"text": "good morning"}),
        ("朗读：今天天气很好", "speak", {"text": "今天天气很好"}),
        ("/voice 你好", "speak", {"text": "你好"}),
        ("help", "help", {}),
        ("What can you do?", "help", {}),
        ("你能做什么", "help", {}),
        ("list digital humans", "list_digital_humans", {}),
        ("有哪些数字人？", "list_digital_humans", {}),
    ],
)  # fmt: skip
def test_intents(text: str, tool: str, args: dict[str, str]) -> None:
    intent = match_intent(text)
    assert intent is not None
    assert intent.tool == tool
    for key, value in args.items():
        assert intent.arguments[key] == value


@pytest.mark.parametrize(
    ("text", "cron", "prompt", "output"),
    [
        ("每天早上9点发日报", "0 9 * * *", "日报", "text"),
        ("每个工作日下午6点半发一个视频总结今天的进展", "30 18 * * 1-5", "一个视频总结今天的进展", "video"),
        ("每周一上午10点推送周报", "0 10 * * 1", "周报", "text"),
        ("every weekday at 9:15 send the sales summary", "15 9 * * 1-5", "the sales summary", "text"),
        ("every day at 6pm post a markdown recap", "0 18 * * *", "a markdown recap", "markdown"),
    ],
)  # fmt: skip
def test_schedule_intents(text: str, cron: str, prompt: str, output: str) -> None:
    intent = match_intent(text)
    assert intent is not None and intent.tool == "schedule_report"
    assert intent.arguments == {"cron": cron, "prompt": prompt, "output": output}


@pytest.mark.parametrize("text", ["what's the weather like", "今天吃什么", "video games are fun"])
def test_unknown_text_matches_nothing(text: str) -> None:
    assert match_intent(text) is None


def test_language_detection() -> None:
    assert detect_language("帮我生成一个视频") == "zh"
    assert detect_language("make a video saying 你好") == "en"
    assert detect_language("hello") == "en"
