"""Tests for edgeguard.faces.photos: loading real photos safely, and refusing unusable files with a reason."""

import resource
import struct
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, features

from edgeguard.faces.photos import PhotoError, is_photo_name, load_photo

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
PEOPLE = TESTDATA / "people"
LIMIT = 40_000_000  # the default recognition.max_image_pixels


def reference_rgb(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def mean_abs_diff(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def error_of(path, max_pixels=LIMIT):
    with pytest.raises(PhotoError) as info:
        load_photo(path, max_pixels)
    return str(info.value)


# --- real photos ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["obama.jpg", "obama-240p.jpg", "biden.jpg", "two_people.jpg"])
def test_real_jpeg_loads_as_rgb_uint8_with_right_shape(name):
    path = PEOPLE / name
    with Image.open(path) as img:
        width, height = img.size
    arr = load_photo(path, LIMIT)
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == np.uint8
    assert arr.shape == (height, width, 3)
    assert arr.flags["C_CONTIGUOUS"]
    assert np.array_equal(arr, reference_rgb(path))


def test_rgba_32bit_png_loads_as_three_channels():
    path = PEOPLE / "32bit.png"
    with Image.open(path) as img:
        assert img.mode == "RGBA"
        width, height = img.size
        rgb = np.asarray(img)[:, :, :3]
    arr = load_photo(path, LIMIT)
    assert arr.shape == (height, width, 3)
    assert arr.dtype == np.uint8
    # the file is fully opaque, so compositing must leave its colours as they are
    assert np.array_equal(arr, rgb)


def test_transparent_pixels_are_composited_onto_white(tmp_path):
    with Image.open(PEOPLE / "32bit.png") as img:
        rgba = np.array(img.convert("RGBA").resize((313, 600)))
    rgba[:, :150, 3] = 0  # left part fully transparent
    rgba[:, 150:200, 3] = 128  # a band half transparent
    path = tmp_path / "transparent.png"
    Image.fromarray(rgba, "RGBA").save(path)
    arr = load_photo(path, LIMIT)
    assert arr.shape == (600, 313, 3)
    assert (arr[:, :150] == 255).all()
    assert np.array_equal(arr[:, 200:], rgba[:, 200:, :3])
    expected_band = (rgba[:, 150:200, :3].astype(float) * 128 + 255 * 127) / 255
    assert np.abs(arr[:, 150:200].astype(float) - expected_band).max() <= 2


def test_palette_png_with_transparency_is_composited_onto_white(tmp_path):
    with Image.open(PEOPLE / "obama-240p.jpg") as img:
        pal = img.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    indexes = np.array(pal)
    indexes[indexes == 0] = 1  # index 0 only where we put it
    indexes[:40, :] = 0
    transparent = Image.fromarray(indexes, "P")
    transparent.putpalette(pal.getpalette())
    path = tmp_path / "palette.png"
    transparent.save(path, transparency=0)
    arr = load_photo(path, LIMIT)
    assert arr.shape == (240, 427, 3)
    assert (arr[:40] == 255).all()
    assert arr[40:].mean() < 200  # the rest is still the photo


def test_greyscale_png_loads_as_three_equal_channels(tmp_path):
    with Image.open(PEOPLE / "obama-240p.jpg") as img:
        grey = img.convert("L")
    path = tmp_path / "grey.png"
    grey.save(path)
    arr = load_photo(path, LIMIT)
    assert arr.shape == (240, 427, 3)
    assert arr.dtype == np.uint8
    expected = np.asarray(grey)
    for channel in range(3):
        assert np.array_equal(arr[:, :, channel], expected)


def test_16bit_greyscale_png_is_scaled_to_8bit_not_clipped(tmp_path):
    with Image.open(PEOPLE / "obama-240p.jpg") as img:
        grey8 = np.asarray(img.convert("L"))
    grey16 = grey8.astype(np.uint16) * 257  # full 16-bit range
    path = tmp_path / "grey16.png"
    Image.fromarray(grey16).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # really a 16-bit file
    arr = load_photo(path, LIMIT)
    assert arr.shape == (240, 427, 3)
    assert arr.dtype == np.uint8
    assert np.abs(arr[:, :, 0].astype(int) - grey8.astype(int)).max() <= 1
    assert np.array_equal(arr[:, :, 0], arr[:, :, 2])
    assert (arr == 255).mean() < 0.05  # not clipped to white
    assert 20 < arr.mean() < 235


def test_16bit_rgb_png_loads_as_8bit_rgb(tmp_path):
    rgb8 = reference_rgb(PEOPLE / "obama-240p.jpg")
    rgb16 = rgb8.astype(np.uint16) * 257
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    arr = load_photo(path, LIMIT)
    assert arr.shape == (240, 427, 3)
    assert arr.dtype == np.uint8
    assert np.abs(arr.astype(int) - rgb8.astype(int)).max() <= 1


@pytest.mark.parametrize(
    "orientation, stored_as",
    [
        (6, Image.Transpose.ROTATE_90),  # camera held turned: viewer must rotate 90 clockwise
        (8, Image.Transpose.ROTATE_270),
        (3, Image.Transpose.ROTATE_180),  # same shape: only the content tells
    ],
)
def test_exif_rotated_jpeg_loads_upright(tmp_path, orientation, stored_as):
    original = reference_rgb(PEOPLE / "obama-240p.jpg")
    stored = Image.fromarray(original).transpose(stored_as)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "rotated.jpg"
    stored.save(path, quality=95, exif=exif)
    stored_back = reference_rgb(path)  # the pixels as stored, without applying the tag
    arr = load_photo(path, LIMIT)
    assert arr.shape == original.shape
    assert mean_abs_diff(arr, original) < 4
    if stored_back.shape == original.shape:
        assert mean_abs_diff(stored_back, original) > 20  # the test would notice no rotation


def test_webp_loads(tmp_path):
    if not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    original = reference_rgb(PEOPLE / "obama-240p.jpg")
    path = tmp_path / "photo.webp"
    Image.fromarray(original).save(path, quality=95)
    arr = load_photo(path, LIMIT)
    assert arr.shape == original.shape
    assert mean_abs_diff(arr, original) < 6


def test_file_with_wrong_suffix_but_real_image_content_loads(tmp_path):
    path = tmp_path / "actually_png.jpg"
    Image.open(PEOPLE / "obama-240p.jpg").save(path, format="PNG")
    assert load_photo(path, LIMIT).shape == (240, 427, 3)


# --- unusable files -------------------------------------------------------------------


def test_truncated_jpeg_is_refused_as_corrupt_or_truncated(tmp_path):
    data = (PEOPLE / "obama.jpg").read_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    message = error_of(path)
    assert "truncated" in message or "corrupt" in message


def test_truncated_png_is_refused(tmp_path):
    data = (PEOPLE / "lin-manuel-miranda.png").read_bytes()
    path = tmp_path / "half.png"
    path.write_bytes(data[: len(data) // 2])
    message = error_of(path)
    assert "truncated" in message or "corrupt" in message


def test_text_file_named_jpg_is_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("Id,Name\n1,Barack Obama\n", encoding="utf-8")
    message = error_of(path)
    assert message.startswith("not an image")


def test_zero_byte_file_is_refused(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    message = error_of(path)
    assert "empty" in message
    assert "0 bytes" in message


def test_missing_file_is_refused(tmp_path):
    message = error_of(tmp_path / "gone.jpg")
    assert "cannot read" in message
    assert "No such file" in message


def test_directory_named_like_a_photo_is_refused(tmp_path):
    path = tmp_path / "folder.jpg"
    path.mkdir()
    with pytest.raises(PhotoError):
        load_photo(path, LIMIT)


def test_tiny_image_is_refused(tmp_path):
    path = tmp_path / "tiny.png"
    Image.open(PEOPLE / "obama-240p.jpg").resize((12, 8)).save(path)
    message = error_of(path)
    assert "too small" in message
    assert "12x8" in message


def png_header_only(width, height, idat=None):
    """A tiny PNG whose IHDR declares width x height (8-bit greyscale) with almost no pixel data."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def peak_rss_bytes():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@pytest.mark.slow  # asserts on elapsed time
def test_decompression_bomb_is_refused_quickly_naming_size_and_setting(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(60000, 60000))
    assert path.stat().st_size < 200
    rss_before = peak_rss_bytes()
    start = time.perf_counter()
    message = error_of(path, LIMIT)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert peak_rss_bytes() - rss_before < 200 * 1024 * 1024  # 3.6 GB of pixels never allocated
    assert "too large" in message
    assert "60000x60000" in message
    assert "max_image_pixels" in message


@pytest.mark.slow  # asserts on elapsed time
def test_image_over_configured_limit_is_refused_naming_size_and_setting(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(8000, 6000))
    start = time.perf_counter()
    message = error_of(path, LIMIT)
    assert time.perf_counter() - start < 1.0
    assert "8000x6000" in message
    assert "max_image_pixels" in message
    assert "40" in message


def test_configured_limit_is_honoured(tmp_path):
    # The same 48-megapixel header passes the size check with a higher limit; it then fails
    # only because its pixel data is not real.
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(8000, 6000, idat=b"not zlib data at all"))
    assert "too large" in error_of(path, 40_000_000)
    message = error_of(path, 50_000_000)
    assert "too large" not in message
    assert "corrupt" in message or "truncated" in message


def test_limit_above_pillows_own_default_is_honoured(tmp_path):
    # recognition.max_image_pixels may be set up to 200 million, above Pillow's built-in
    # bomb limit (about 89.5 million pixels); a 95-megapixel panorama with the setting at
    # 150 million must pass the size check.  The pixel data here is broken on purpose so
    # that nothing large is decoded: the only acceptable refusal is "corrupt".
    path = tmp_path / "panorama.png"
    path.write_bytes(png_header_only(10000, 9500, idat=b"not zlib data at all"))
    message = error_of(path, 150_000_000)
    assert "too large" not in message
    assert "corrupt" in message or "truncated" in message


# --- is_photo_name ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["photo.jpg", "PHOTO.JPG", "a.Jpeg", "scan.jpeg", "x.png", "X.PNG", "phone.webp", "Obama 2.jpg"],
)
def test_is_photo_name_accepts_photo_suffixes(name):
    assert is_photo_name(Path("TrainingImage") / "1" / name)


@pytest.mark.parametrize(
    "name",
    [
        ".hidden.jpg",
        "._photo.jpg",  # macOS resource fork
        "~photo.jpg",
        "~$photo.png",
        "notes.txt",
        "photo.heic",
        "photo.HEIC",
        "photo.gif",
        "photo.jpg.part",
        "photo.jpg~",
        "jpg",
        "Details.csv",
    ],
)
def test_is_photo_name_rejects_other_files(name):
    assert not is_photo_name(Path("TrainingImage") / "1" / name)
