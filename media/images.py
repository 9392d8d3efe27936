"""Decode a user's image only after its header says how many pixels it has.

Why: a decoder allocates what the header announces. A 20000×20000 PNG logo of 7 MB decodes to
1.6 GB of BGRA pixels (a render with it peaked at 3.4 GB), so an image is refused above
`images.max_pixels` from its header bytes, before anything is decoded. The header is read here, from
the same bytes that are then decoded, for the formats OpenCV recognises by the same signatures
(PNG, JPEG, WebP, BMP); any other file cannot be bounded and is refused as unsupported.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from media.errors import MediaError

# JPEG start-of-frame markers (every SOFn but DHT C4, JPG C8 and DAC CC): they carry the frame size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: no length field


class ImageTooLargeError(MediaError):
    """An image's header announces more pixels than `images.max_pixels`."""

    code = "image_too_large"


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _png(data: bytes) -> ImageHeader | None:
    # The signature, then IHDR first: length 13, "IHDR", width, height (big-endian).
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return ImageHeader("PNG", width, height)


def _jpeg(data: bytes) -> ImageHeader | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return ImageHeader("JPEG", width, height)
        if marker == 0xDA or length < 2:  # scan data before any frame header: not a valid JPEG
            return None
        pos += 2 + length
    return None


def _webp(data: bytes) -> ImageHeader | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageHeader("WebP", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return ImageHeader("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageHeader("WebP", width, height)
    return None


def _bmp(data: bytes) -> ImageHeader | None:
    if len(data) < 26:
        return None
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return ImageHeader("BMP", abs(width), abs(height))


def read_header(data: bytes) -> ImageHeader | None:
    """Format and size from an image file's bytes (only its header is looked at); None when it is
    none of the supported formats, or its header is damaged."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg(data)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp(data)
    if data.startswith(b"BM"):
        return _bmp(data)
    return None


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def decode_bounded(path: Path, max_pixels: int, flags: int, what: str = "image") -> np.ndarray | None:
    """`path` decoded by OpenCV with `flags`, only if its header announces at most `max_pixels`
    (ImageTooLargeError naming the size, the limit and the fix otherwise). None when the file is
    empty, not a supported format or corrupt: the caller words that error for its own input."""
    data = Path(path).read_bytes()
    header = read_header(data)
    if header is None or header.pixels == 0:
        return None
    if header.pixels > max_pixels:
        scale = math.sqrt(max_pixels / header.pixels)
        fits = f"{max(1, math.floor(header.width * scale))}×{max(1, math.floor(header.height * scale))}"
        raise ImageTooLargeError(
            f"{what} {path} is {header.width}×{header.height} ({_megapixels(header.pixels)}), above the "
            f"limit of {_megapixels(max_pixels)} (images.max_pixels); scale it down (e.g. to {fits}), or raise "
            "images.max_pixels in your --config"
        )
    previous = cv2.utils.logging.getLogLevel()
    # OpenCV would print its own decoder complaints; the caller reports one clear line instead.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), flags)  # the very bytes whose header was read
    finally:
        cv2.utils.logging.setLogLevel(previous)
