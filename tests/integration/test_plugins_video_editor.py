"""video_editor builtin plugin against the real bundled ffmpeg."""

from __future__ import annotations

import pytest

from avatarbot.errors import InvalidInput
from avatarbot.plugins.manager import PluginManager
from avatarbot.plugins.media import probe
from tests.helpers.media import frame_at, make_test_video

SRT = "1\n00:00:00,000 --> 00:00:01,800\nHello from avatarbot\n"


@pytest.fixture
def editor(tmp_path):
    manager = PluginManager(tmp_path / "data")
    manager.load_plugin("video_editor")
    make_test_video(manager.media_dir / "in.mp4", seconds=3.0)
    yield manager
    manager.shutdown()


def bottom_text_pixels(editor, subtitled: str, plain: str, at: float) -> int:
    """Pixels in the lower band that differ strongly between subtitled and plain frames."""
    a = frame_at(editor.media_dir / subtitled, at, editor.media_dir / "a.png")
    b = frame_at(editor.media_dir / plain, at, editor.media_dir / "b.png")
    diff = abs(a - b)
    top = (diff[: a.shape[0] // 2] > 60).sum()
    assert top < 20  # the upper half is untouched: only the subtitle band changed
    return int((diff[int(a.shape[0] * 0.7) :] > 60).sum())


@pytest.mark.parametrize("renderer", ["libass", "drawtext"])
def test_trim_then_burn_subtitles(editor, renderer):
    editor.set_config("video_editor", {"subtitle_renderer": renderer})
    trimmed = editor.call_tool(
        "video_editor.trim", input_path="in.mp4", output_path="cut.mp4", start=0.5, end=2.5
    )
    assert trimmed["duration"] == pytest.approx(2.0, abs=0.1)
    (editor.media_dir / "subs.srt").write_text(SRT)
    result = editor.call_tool(
        "video_editor.burn_subtitles",
        input_path="cut.mp4",
        output_path="subbed.mp4",
        srt_path="subs.srt",
    )
    assert result["renderer"] == renderer and result["cues"] == 1
    info = probe(editor.media_dir / "subbed.mp4")
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert info.video.codec == "h264" and (info.video.width, info.video.height) == (320, 240)
    assert info.audio is not None and info.audio.codec == "aac"
    assert bottom_text_pixels(editor, "subbed.mp4", "cut.mp4", 1.0) > 100
    # after the cue ends (1.8 s) the picture is plain again
    assert bottom_text_pixels(editor, "subbed.mp4", "cut.mp4", 1.95) < 20


def test_concat_watermark_thumbnail_info(editor):
    make_test_video(editor.media_dir / "small.mp4", seconds=1.0, size="160x120")
    joined = editor.call_tool(
        "video_editor.concat", input_paths=["in.mp4", "small.mp4"], output_path="joined.mp4"
    )
    assert joined["duration"] == pytest.approx(4.0, abs=0.15)
    assert len(joined["streams"]) == 2
    marked = editor.call_tool(
        "video_editor.watermark",
        input_path="in.mp4",
        output_path="marked.mp4",
        text="avatarbot",
        position="top-left",
        opacity=1.0,
    )
    assert marked["duration"] == pytest.approx(3.0, abs=0.1)
    thumb = editor.call_tool(
        "video_editor.thumbnail", input_path="marked.mp4", output_path="thumb.jpg", at=1
    )
    assert (editor.media_dir / "thumb.jpg").stat().st_size > 1000 and thumb["at"] == 1
    info = editor.call_tool("video_editor.info", path="in.mp4")
    assert [s["kind"] for s in info["streams"]] == ["video", "audio"]


def test_paths_outside_media_folder_refused(editor, tmp_path):
    with pytest.raises(InvalidInput, match="outside the media folder"):
        editor.call_tool("video_editor.info", path="/etc/passwd")
    with pytest.raises(InvalidInput, match="outside the media folder"):
        editor.call_tool("video_editor.trim", input_path="in.mp4", output_path="", start=0)
    (editor.media_dir / "link.mp4").symlink_to("/etc/passwd")
    with pytest.raises(InvalidInput, match="outside the media folder"):
        editor.call_tool("video_editor.info", path="link.mp4")
    with pytest.raises(InvalidInput, match="outside the media folder"):
        editor.call_tool(
            "video_editor.trim", input_path="in.mp4", output_path="../../escape.mp4", start=0
        )
    with pytest.raises(InvalidInput, match=r"ffmpeg failed|not a readable"):
        (editor.media_dir / "junk.mp4").write_text("not a video")
        editor.call_tool("video_editor.trim", input_path="junk.mp4", output_path="x.mp4")


def test_audio_tracks_convert_and_copy_concat(editor):
    audio = editor.call_tool(
        "video_editor.extract_audio", input_path="in.mp4", output_path="sound.m4a"
    )
    assert [s["kind"] for s in audio["streams"]] == ["audio"]
    make_test_video(editor.media_dir / "silent.mp4", seconds=2.0, audio=False)
    dubbed = editor.call_tool(
        "video_editor.add_audio",
        video_path="silent.mp4",
        audio_path="sound.m4a",
        output_path="dubbed.mp4",
    )
    assert [s["kind"] for s in dubbed["streams"]] == ["video", "audio"]
    assert dubbed["duration"] == pytest.approx(2.0, abs=0.15)  # -shortest
    small = editor.call_tool(
        "video_editor.convert", input_path="in.mp4", output_path="small.mp4", quality=40, fps=10
    )
    assert small["streams"][0]["fps"] == 10
    assert (editor.media_dir / "small.mp4").stat().st_size < (
        editor.media_dir / "in.mp4"
    ).stat().st_size
    copied = editor.call_tool(
        "video_editor.concat",
        input_paths=["in.mp4", "in.mp4"],
        output_path="twice.mp4",
        method="demuxer",
    )
    assert copied["duration"] == pytest.approx(6.0, abs=0.15)
