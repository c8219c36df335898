"""Image files for the image tests, made with Pillow, base64-encoded as a request sends them."""

from __future__ import annotations

import base64
import io
import struct
import zlib

from PIL import Image


def image_bytes(colour=(255, 0, 0), *, size=(20, 30), mode="RGB", image_format="PNG") -> bytes:
    """A solid ``colour`` image file of ``size`` [width, height]."""
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format=image_format)
    return buffer.getvalue()


def encoded(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` × ``height`` RGB pixels and whose data is empty: a decompression
    bomb's shape, a few dozen bytes long."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
