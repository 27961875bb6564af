"""Images that go with a message in the Claude kernel: ``%attach PATH`` and ``@path`` mentions.

The two travel differently. ``%attach`` images are sent by us, as image blocks beside the text
(``Session.send_message_with_images``). An ``@chart.png`` mention is expanded by the CLI itself:
in stream-json mode CLI 2.1.337 reads the file and puts an image block before the message's text.
Either way the cell shows the image that was sent, so a person sees what the model saw; a mention
of an image that cannot be read (or is far too large) stops the cell with a clear error before
anything is sent.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .images import Image, from_file

__all__ = ["IMAGE_SUFFIXES", "Attachments", "mentioned_images"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
#: ``@path`` or ``@"path with spaces"``, at the start or after white space (not an e-mail address).
_MENTION = re.compile(r'(?:^|(?<=\s))@(?:"([^"]+)"|(\S+))')


def mentioned_images(message: str, cwd: str) -> list[tuple[str, Image]]:
    """The image files ``@`` mentions name (relative to the CLI's folder), each once, in order."""
    found: list[tuple[str, Image]] = []
    seen: set[str] = set()
    for match in _MENTION.finditer(message):
        name = match.group(1) or match.group(2).rstrip(".,;:!?)'\"")
        if not name.lower().endswith(IMAGE_SUFFIXES) or name in seen:
            continue
        path = os.path.join(cwd, os.path.expanduser(name))
        if os.path.exists(path):
            seen.add(name)
            found.append((name, from_file(path, "@" + name)))
    return found


@dataclass
class Attachments:
    """What goes with the next message: ``%attach`` images, to be sent, and @-mentioned ones, to be shown."""

    pending: list[tuple[str, Image]] = field(default_factory=list)

    def attach(self, path: str, cwd: str) -> str:
        name = os.path.expanduser(path.strip().strip('"'))
        if not name:
            raise ValueError("usage: %attach PATH (an image file)")
        image = from_file(os.path.join(cwd, name), name)
        self.pending.append((name, image))
        return f"{name} ({image.size}) goes with the message."

    def for_message(self, message: str, cwd: str) -> tuple[list[tuple[str, Image]], list[tuple[str, Image]]]:
        """The images to send with ``message``, and the mentioned ones the CLI sends itself.

        The attached ones are kept until :meth:`clear`, once the message went out: a cell whose
        turn never started (the CLI would not start) loses nothing.
        """
        return list(self.pending), mentioned_images(message, cwd)

    def clear(self) -> None:
        self.pending.clear()
