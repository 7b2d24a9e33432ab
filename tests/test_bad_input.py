"""Bad input, generated at run time: each odd file loads correctly or is skipped with a reason and counted."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from styleid.data.fetch import scan_and_check
from styleid.errors import DataError
from styleid.images import MAX_PIXELS, BadImage, load_rgb


def _photo(size=(40, 30), colour=(200, 30, 30)) -> Image.Image:
    return Image.new("RGB", size, colour)


def _jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


# --- files that must load, correctly -------------------------------------------------------

def test_png_with_alpha_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 10, 20))
    rgba.save(tmp_path / "a.png")
    img = load_rgb(tmp_path / "a.png")
    assert img.mode == "RGB" and img.getpixel((15, 5)) == (255, 255, 255) and img.getpixel((2, 5)) == (0, 0, 255)


def test_palette_png(tmp_path):
    _photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(tmp_path / "p.png")
    img = load_rgb(tmp_path / "p.png")
    assert img.mode == "RGB" and img.size == (40, 30)
    assert max(abs(a - b) for a, b in zip(img.getpixel((5, 5)), (200, 30, 30))) < 8


def test_sixteen_bit_png_keeps_its_range(tmp_path):
    arr = np.full((20, 20), 65535, np.uint16)
    arr[:, :10] = 0
    Image.fromarray(arr).save(tmp_path / "deep.png")
    img = load_rgb(tmp_path / "deep.png")
    assert img.getpixel((15, 5)) == (255, 255, 255) and img.getpixel((2, 5)) == (0, 0, 0)


def test_grayscale_and_cmyk_jpegs(tmp_path):
    _photo().convert("L").save(tmp_path / "g.jpg")
    _photo().convert("CMYK").save(tmp_path / "c.jpg")
    assert load_rgb(tmp_path / "g.jpg").mode == "RGB"
    cmyk = load_rgb(tmp_path / "c.jpg")
    assert cmyk.mode == "RGB" and cmyk.getpixel((5, 5))[0] > 150 > cmyk.getpixel((5, 5))[2]


def test_exif_rotation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    _photo((40, 30)).save(tmp_path / "r.jpg", exif=exif)
    assert load_rgb(tmp_path / "r.jpg").size == (30, 40)


def test_odd_file_names_load(tmp_path):
    name = tmp_path / "Zoë Ångström photo 1.jpg"
    _photo().save(name)
    assert load_rgb(name).size == (40, 30)


# --- files that must be refused with a reason ---------------------------------------------

@pytest.mark.parametrize("name, content, reason", [
    ("zero.jpg", b"", "empty file"),
    ("text.jpg", b"hello, I am not a picture\n" * 20, "not a readable image"),
    ("truncated.jpg", None, "not a readable image"),
    ("tiny.png", "tiny", "smaller than"),
])
def test_unusable_files_raise_bad_image_with_a_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is None:
        path.write_bytes(_jpeg_bytes(_photo((200, 200)))[:400])
    elif content == "tiny":
        Image.new("RGB", (1, 1)).save(path)
    else:
        path.write_bytes(content)
    with pytest.raises(BadImage, match=reason):
        load_rgb(path)


def test_decompression_bomb_is_refused_without_decoding(tmp_path):
    side = int(MAX_PIXELS ** 0.5) + 100
    Image.new("1", (side, side)).save(tmp_path / "bomb.png")  # 1-bit: a small file claiming a huge image
    with pytest.raises(BadImage, match="pixel limit|too large"):
        load_rgb(tmp_path / "bomb.png")


# --- a whole dataset with odd files: loaded or skipped, counted, and a share limit ---------

def _dataset(tmp_path, n_good=20):
    root = tmp_path / "people"
    for k in range(n_good):
        person = root / f"person {k % 4} é"
        person.mkdir(parents=True, exist_ok=True)
        _photo((32, 32), (10 * k, 50, 90)).save(person / f"img {k}.jpg")
    (root / "person 0 é" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "person 1 é" / "broken.jpg").write_bytes(b"")
    (root / "person 2 é" / "notes.jpg").write_text("not an image")
    os.symlink(root / "person 3 é" / "img 3.jpg", root / "person 3 é" / "link.jpg")
    return root


def test_scan_skips_and_counts_bad_files_and_follows_links(tmp_path):
    root = _dataset(tmp_path)
    result = scan_and_check(root, "auto", max_bad_fraction=0.2)
    names = {item.path for item in result.items}
    assert not any(".DS_Store" in n for n in names)  # hidden files are not images
    assert any(n.endswith("link.jpg") for n in names)  # a link to an image is an image
    assert sorted(rel.rsplit("/", 1)[-1] for rel, _ in result.skipped) == ["broken.jpg", "notes.jpg"]
    assert all(reason for _, reason in result.skipped)


def test_too_many_bad_files_stop_with_a_clear_error(tmp_path):
    root = _dataset(tmp_path, n_good=4)
    with pytest.raises(DataError, match=r"unusable .*max_bad_fraction") as err:
        scan_and_check(root, "auto", max_bad_fraction=0.05)
    assert "\n" not in str(err.value)


def test_jpegs_decode_to_the_same_pixels_as_pillow(tmp_path):
    """load_rgb decodes colour and grey JPEGs with OpenCV (faster); the pixels must be Pillow's, EXIF rotation included."""
    from PIL import ImageOps

    rng = np.random.default_rng(0)
    photo = Image.fromarray((rng.random((50, 70, 3)) * 255).astype(np.uint8)).resize((140, 100))
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise on display
    photo.save(tmp_path / "q95.jpg", quality=95)
    photo.save(tmp_path / "q75_444.jpg", quality=75, subsampling=0)
    photo.convert("L").save(tmp_path / "grey.jpg")
    photo.save(tmp_path / "rotated.jpg", exif=exif)
    for name in ("q95.jpg", "q75_444.jpg", "grey.jpg", "rotated.jpg"):
        with Image.open(tmp_path / name) as img:
            img.load()
            pillow = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
        assert np.array_equal(np.asarray(load_rgb(tmp_path / name)), pillow), name
    assert load_rgb(tmp_path / "rotated.jpg").size == (100, 140)
