"""Images for the model: every source bounded, every bad input a clear error."""

from __future__ import annotations

import base64
import builtins
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as Picture

from claude_kernel.images import MAX_BYTES, MAX_SIDE, ImageError, bounded, from_file, from_value


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Picture.new("RGB", (width, height), "green").save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_small_image_goes_as_it_is_and_a_large_one_is_scaled_down() -> None:
    small = _png(64, 48)
    image = bounded(small, "small")
    assert (image.media_type, image.width, image.height) == ("image/png", 64, 48)
    assert base64.b64decode(image.data) == small
    large = bounded(_png(5000, 1000), "large")
    assert (large.width, large.height) == (MAX_SIDE, 314) and large.size == f"{MAX_SIDE}x314 PNG"


def test_every_kind_of_value(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(40, 10))  # 4000 x 1000 at its dpi: drawn small enough instead
    figure.add_subplot().plot([1, 2])
    drawn = from_value(figure, "fig")
    assert drawn.media_type == "image/png" and drawn.width is not None and drawn.width <= MAX_SIDE
    assert from_value(Picture.new("RGBA", (10, 10)), "pil").size == "10x10 PNG"
    assert from_value(_png(3, 2), "raw").size == "3x2 PNG"
    (tmp_path / "a.png").write_bytes(_png(5, 5))
    assert from_value(tmp_path / "a.png", "path").size == "5x5 PNG"
    with pytest.raises(ImageError, match="x is a dict; attach an image file, a PIL image"):
        from_value({}, "x")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.png", "missing.png: no such file"),
        (lambda p: p, "is a folder, not an image file"),
        (lambda p: (p / "t.png").write_text("text") and p / "t.png", "is not a PNG, JPEG, GIF or WebP image"),
        (lambda p: (p / "cut.png").write_bytes(_png(50, 50)[:60]) and p / "cut.png", "could not be read as an image"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, make: Any, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        from_file(str(make(tmp_path)))


def test_without_pillow_only_the_byte_cap_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pil(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    assert bounded(_png(3000, 20), "wide").size == "3000x20 PNG"  # its size is read from the header
    with pytest.raises(ImageError, match="install Pillow"):
        bounded(b"\x89PNG\r\n\x1a\n" + bytes(MAX_BYTES), "huge")
