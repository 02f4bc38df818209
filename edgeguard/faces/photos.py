"""Loading still photos safely: every way a file can be unusable becomes a `PhotoError`.

Watchlist photos come from site staff, so anything can arrive: a PDF renamed to
.jpg, a half-copied file, a 20,000-pixel panorama, a phone photo stored sideways
with an EXIF rotation, a transparent PNG, a 16-bit scan.  The usable ones are
normalised to 8-bit RGB in their upright orientation; the others are refused
with a reason a person can act on.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..common.files import UnsafeFile, open_regular

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
# Pictures we do not read: worth telling staff about (convert it), unlike a README or Thumbs.db.
OTHER_IMAGE_SUFFIXES = frozenset(
    {
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
        ".heic",
        ".heif",
        ".avif",
        ".jfif",
        ".jp2",
        ".dng",
        ".cr2",
        ".nef",
        ".arw",
    }
)

# Decoded, a photo may take at most what an 8-bit RGB photo at the pixel limit takes (width x height x
# bands x bytes per sample, 16 bits counted as 2): a 77 KB 16-bit PNG of 6300x6300 is under the pixel limit
# but decodes to 238 MB.  And one untrusted photo is decoded at a time in the process (uploads and
# TrainingImage/ alike), so a burst of them costs what one costs.
BYTES_PER_PIXEL = 3
_decoding = threading.Lock()

# Our own limit (recognition.max_image_pixels) is checked from the header,
# before decoding, with a message that names the setting; Pillow's fixed one
# would otherwise refuse first, or override a higher configured limit.
Image.MAX_IMAGE_PIXELS = None


class PhotoError(Exception):
    """A photo that cannot be used; str() is the reason, for logs and reports."""


def is_photo_name(path: Path) -> bool:
    """Whether a file name looks like a photo we should read (hidden and temp files do not)."""
    return path.suffix.lower() in PHOTO_SUFFIXES and not path.name.startswith((".", "~"))


def is_image_name(path: Path) -> bool:
    """Whether a file name looks like a picture of any kind, read or not (hidden and temp files do not)."""
    return path.suffix.lower() in PHOTO_SUFFIXES | OTHER_IMAGE_SUFFIXES and not path.name.startswith(
        (".", "~")
    )


def load_photo(path: Path, max_pixels: int) -> np.ndarray:
    """Read a photo as an upright H x W x 3 uint8 RGB array, or raise PhotoError.

    A symbolic link is refused, not followed: a link in TrainingImage/ to
    /etc/passwd or to a photo elsewhere on the disk must not be read or enrolled.
    """
    try:
        fh = open_regular(path)
    except UnsafeFile as exc:
        raise PhotoError(exc.strerror) from None
    except OSError as exc:
        raise PhotoError(f"cannot read file: {exc.strerror or exc}") from None
    with fh, _decoding:
        try:
            return _decode(fh, max_pixels)
        finally:
            _give_back_memory()


def _decode(fh: BinaryIO, max_pixels: int) -> np.ndarray:
    if os.fstat(fh.fileno()).st_size == 0:
        raise PhotoError("empty file (0 bytes)")
    # face_recognition's import turns on Pillow's global "load truncated images" (black
    # rows for the missing data); a half-copied photo must be refused, whoever imported what.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(fh) as img:
            _check_pixels(img, max_pixels)
            _check_decoded_bytes(img, max_pixels * BYTES_PER_PIXEL)
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb(img)
    except PhotoError:
        raise
    except UnidentifiedImageError:
        raise PhotoError("not an image file that can be read (JPEG, PNG or WebP expected)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(f"corrupt or truncated image: {exc}") from None


def _check_pixels(img: Image.Image, max_pixels: int) -> None:
    width, height = img.size
    if width * height > max_pixels:
        raise PhotoError(
            f"image too large: {width}x{height} is {width * height / 1e6:.0f} megapixels, "
            f"the limit is {max_pixels / 1e6:.0f} (recognition.max_image_pixels)"
        )
    if min(width, height) < 16:
        raise PhotoError(f"image too small: {width}x{height} pixels")


def _check_decoded_bytes(img: Image.Image, most: int) -> None:
    """Refuse, from the header, a photo whose decoded pixels would take more than `most` bytes."""
    width, height = img.size
    sixteen = img.mode.startswith(("I", "F")) or any("16" in str(tile[3]) for tile in img.tile)
    decoded = width * height * len(img.getbands()) * (2 if sixteen else 1)
    if decoded > most:
        raise PhotoError(
            f"image too large to decode: {width}x{height}{' at 16 bits' if sixteen else ''} takes "
            f"{decoded / 2**20:.0f} MB, the limit is {most / 2**20:.0f} MB: save it smaller "
            "or as an 8-bit JPEG"
        )


def _give_back_memory() -> None:
    """Return the freed decode buffers to the system (glibc keeps them otherwise), where the C library can."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def to_rgb(img: Image.Image) -> np.ndarray:
    """Normalise any Pillow mode to 8-bit RGB: alpha onto white, 16-bit scaled down."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        grey = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if grey.max(initial=0) > 255 else 255.0
        grey8 = np.clip(grey * (255.0 / peak), 0, 255).astype(np.uint8)
        return np.repeat(grey8[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
