"""Images for the model: a file, a PIL image, a matplotlib figure or raw bytes, bounded, as base64.

Every image that goes to the model passes through :func:`bounded`: each one costs context (about
width x height / 750 tokens) and the Messages API refuses one over 5 MB, so a large image is
downscaled to :data:`MAX_SIDE` on its long edge (with Pillow, which matplotlib brings along) and
one still over :data:`MAX_BYTES` is refused with a message that says so. Without Pillow only the
byte cap applies. Nothing here imports matplotlib or Pillow unless the value at hand needs it.
"""

from __future__ import annotations

import base64
import io
import os
import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_BYTES", "MAX_SIDE", "Image", "ImageError", "bounded", "from_file", "from_value", "is_figure"]

#: The long edge the API itself scales larger images down to; sending more only costs upload time.
MAX_SIDE = 1568
#: Raw bytes, so that the base64 form stays under the API's 5 MB per image.
MAX_BYTES = 3_750_000
#: A file larger than this is not even read (a video, a dump): it could never be made small enough.
MAX_FILE_BYTES = 50_000_000

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class ImageError(ValueError):
    """An image that cannot be sent; the message says which and why."""


@dataclass(frozen=True)
class Image:
    """One image ready for a message or a tool result."""

    media_type: str
    data: str  # base64
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> str:
        """``640x480 PNG``: how the text beside an image describes it."""
        kind = self.media_type.removeprefix("image/").upper()
        return f"{self.width}x{self.height} {kind}" if self.width and self.height else kind

    def block(self) -> dict[str, Any]:
        """The Messages-API image block."""
        return {"type": "image", "source": {"type": "base64", "media_type": self.media_type, "data": self.data}}


def media_type_of(raw: bytes) -> str | None:
    for signature, media_type in _SIGNATURES:
        if raw.startswith(signature):
            return media_type
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


def _png_size(raw: bytes) -> tuple[int, int] | None:
    """A PNG's size from its header (the IHDR chunk comes first), without Pillow."""
    if raw.startswith(b"\x89PNG\r\n\x1a\n") and raw[12:16] == b"IHDR":
        width, height = struct.unpack(">II", raw[16:24])
        return int(width), int(height)
    return None


def bounded(raw: bytes, name: str) -> Image:
    """``raw`` as an image the API accepts: a known format, at most MAX_SIDE and MAX_BYTES."""
    media_type = media_type_of(raw)
    if media_type is None:
        raise ImageError(f"{name} is not a PNG, JPEG, GIF or WebP image")
    try:
        from PIL import Image as PILImage
    except ImportError:
        size = _png_size(raw)
        if len(raw) > MAX_BYTES:
            raise ImageError(
                f"{name} is {len(raw) / 1e6:.1f} MB; images are limited to {MAX_BYTES / 1e6:.2f} MB "
                "(install Pillow to have large images scaled down instead)"
            ) from None
        return Image(media_type, base64.b64encode(raw).decode(), *(size or (None, None)))
    try:
        with PILImage.open(io.BytesIO(raw)) as opened:
            opened.load()
            picture = opened.copy()
    except Exception as exc:  # Pillow raises many kinds for a broken file
        raise ImageError(f"{name} could not be read as an image: {exc}") from exc
    width, height = picture.size
    if max(width, height) <= MAX_SIDE and len(raw) <= MAX_BYTES:
        return Image(media_type, base64.b64encode(raw).decode(), width, height)
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    return _encoded(picture, name, prefer_jpeg=media_type == "image/jpeg")


def _encoded(picture: Any, name: str, *, prefer_jpeg: bool) -> Image:
    """A PIL image as PNG (or JPEG, for photos and when PNG is too large), within MAX_BYTES."""
    attempts = ["JPEG"] if prefer_jpeg else ["PNG", "JPEG"]
    for kind in attempts:
        buffer = io.BytesIO()
        frame = picture.convert("RGB") if kind == "JPEG" and picture.mode not in ("RGB", "L") else picture
        frame.save(buffer, format=kind, **({"quality": 85} if kind == "JPEG" else {}))
        if buffer.tell() <= MAX_BYTES:
            media_type = "image/jpeg" if kind == "JPEG" else "image/png"
            return Image(media_type, base64.b64encode(buffer.getvalue()).decode(), *picture.size)
    raise ImageError(f"{name} is still larger than {MAX_BYTES / 1e6:.2f} MB after scaling it down")


def from_file(path: str, name: str | None = None) -> Image:
    """The image in a file, bounded; a missing, unreadable, huge or non-image file is an ImageError."""
    shown = name or path
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{shown} is {size / 1e6:.0f} MB, too large to be an image worth sending")
        with open(path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        raise ImageError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{shown} is a folder, not an image file") from None
    except OSError as exc:
        raise ImageError(f"{shown} could not be read: {exc.strerror or exc}") from exc
    return bounded(raw, shown)


def is_figure(value: Any) -> bool:
    """A matplotlib Figure, recognised without importing matplotlib."""
    return any(cls.__module__ == "matplotlib.figure" and cls.__name__ == "Figure" for cls in type(value).__mro__)


def figure_png(figure: Any) -> bytes:
    """A matplotlib figure as PNG, drawn small enough to need no scaling (as the inline backend crops it)."""
    width, height = figure.get_size_inches()
    dpi = min(float(figure.dpi), MAX_SIDE / max(width, height, 1e-6))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def from_value(value: Any, name: str) -> Image:
    """A PIL image, a matplotlib figure, PNG/JPEG bytes or a path, as a bounded image."""
    if is_figure(value):
        return bounded(figure_png(value), name)
    if isinstance(value, bytes | bytearray | memoryview):
        return bounded(bytes(value), name)
    if isinstance(value, str | os.PathLike):
        return from_file(os.fspath(value), name)
    if callable(getattr(value, "save", None)) and hasattr(value, "mode") and hasattr(value, "size"):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")  # a PIL image
        return bounded(buffer.getvalue(), name)
    raise ImageError(
        f"{name} is a {type(value).__name__}; attach an image file, a PIL image, a matplotlib Figure or PNG bytes"
    )
