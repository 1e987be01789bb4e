from __future__ import annotations

import importlib

import pytest
from PIL import Image

from avatarbot.errors import InvalidInput
from avatarbot.plugins.manager import PluginManager


@pytest.fixture
def manager(tmp_path):
    mgr = PluginManager(tmp_path / "data")
    mgr.load_plugin("image_processor")
    image = Image.new("RGBA", (400, 200), (255, 0, 0, 128))
    image.paste((0, 0, 255, 255), (300, 50, 350, 150))
    mgr.media_dir.mkdir(parents=True, exist_ok=True)
    image.save(mgr.media_dir / "in.png")
    yield mgr
    mgr.shutdown()


def test_resize_crop_convert_info(manager):
    call = manager.call_tool
    out = call("image_processor.resize", input_path="in.png", output_path="r.png", width=100)
    assert (out["width"], out["height"]) == (100, 50)
    out = call(
        "image_processor.resize",
        input_path="in.png",
        output_path="s.png",
        width=50,
        height=50,
        keep_aspect_ratio=False,
    )
    assert Image.open(manager.media_dir / "s.png").size == (50, 50)
    out = call(
        "image_processor.crop",
        input_path="in.png",
        output_path="c.png",
        left=300,
        top=50,
        width=50,
        height=100,
    )
    cropped = Image.open(manager.media_dir / "c.png").convert("RGBA")
    assert cropped.size == (50, 100) and cropped.getpixel((25, 50)) == (0, 0, 255, 255)
    with pytest.raises(InvalidInput, match="exceeds"):
        call(
            "image_processor.crop",
            input_path="in.png",
            output_path="c.png",
            left=390,
            top=0,
            width=50,
            height=10,
        )
    out = call("image_processor.convert", input_path="in.png", output_path="in.jpg")
    assert out["format"] == "JPEG"
    assert call("image_processor.info", path="in.jpg") == {
        "width": 400,
        "height": 200,
        "mode": "RGB",
        "format": "JPEG",
    }


def test_face_crop_geometry_with_detector_stub(manager, monkeypatch):
    plugin = manager.get_plugin("image_processor")
    faces = importlib.import_module(type(plugin).__module__.rsplit(".", 1)[0] + ".faces")
    plugin_module = importlib.import_module(type(plugin).__module__)
    monkeypatch.setattr(plugin_module, "detect_largest_face", lambda rgb: (310, 60, 40, 80))
    out = manager.call_tool(
        "image_processor.face_crop", input_path="in.png", output_path="face.png", size=64
    )
    assert out["face_box"] == [310, 60, 40, 80] and (out["width"], out["height"]) == (64, 64)
    # 80 px face * 1.6 margin = 128 px square, centred on (330, 100), pushed inside the image
    assert faces.square_around((310, 60, 40, 80), 0.6, 400, 200) == (266, 36, 128, 128)
    assert faces.square_around((0, 0, 190, 190), 0.6, 400, 200) == (0, 0, 200, 200)


def test_face_crop_without_face_is_a_clear_error(manager):
    with pytest.raises(InvalidInput, match="no face"):
        manager.call_tool("image_processor.face_crop", input_path="in.png", output_path="f.png")


def test_face_crop_on_a_real_portrait(manager):
    """Runs once the pipeline's public-domain portrait is in the tree (video branch)."""
    import shutil
    from pathlib import Path

    import avatarbot.pipeline

    portrait = Path(avatarbot.pipeline.__file__).parent / "assets" / "default_portrait.jpg"
    if not portrait.is_file():
        pytest.skip("default portrait not in this tree yet")
    shutil.copy(portrait, manager.media_dir / "portrait.jpg")
    out = manager.call_tool(
        "image_processor.face_crop", input_path="portrait.jpg", output_path="face.png", size=128
    )
    x, y, w, h = out["face_box"]
    width, height = Image.open(portrait).size
    # a plausible single face: a good part of the picture, fully inside it
    assert 0.15 * width < w < 0.9 * width and x >= 0 and x + w <= width and y + h <= height
    assert Image.open(manager.media_dir / "face.png").size == (128, 128)


def test_enhance_and_filter(manager):
    Image.new("RGB", (64, 64), (100, 100, 100)).save(manager.media_dir / "grey.png")
    out = manager.call_tool(
        "image_processor.enhance", input_path="grey.png", output_path="bright.png", brightness=2.0
    )
    assert out["format"] == "PNG"
    assert Image.open(manager.media_dir / "bright.png").getpixel((10, 10)) == (200, 200, 200)
    manager.call_tool(
        "image_processor.filter", input_path="in.png", output_path="blur.png", filter_type="BLUR"
    )
    blurred = Image.open(manager.media_dir / "blur.png").convert("RGBA")
    # the sharp blue/red edge at x=300 is softened
    assert blurred.getpixel((300, 100)) not in ((0, 0, 255, 255), (255, 0, 0, 128))
    with pytest.raises(InvalidInput, match="filter_type"):
        manager.call_tool(
            "image_processor.filter", input_path="in.png", output_path="x.png", filter_type="WAVY"
        )
    assert manager.get_plugin("image_processor").get_stats()["processed"] == 2
