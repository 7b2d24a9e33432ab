"""Drawing synthetic people: each person's facial traits, and those traits drawn as a photo (pose, shading,
a cluttered background, sensor noise) or as a render (exaggerated like a caricature: flat colours with
outlines, a pencil sketch or a posterized print). Pure functions of (traits, size, rng)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

RENDER_STYLES = ("flat", "sketch", "poster")
SUPERSAMPLE = 2  # draw at 2x and downsample for anti-aliased edges
ZOOM = 1.4  # how much the head is enlarged in the frame

SKIN = np.array([[255, 224, 196], [241, 194, 155], [224, 172, 125], [198, 134, 86], [141, 85, 54], [95, 60, 40]], float)
HAIR = np.array([[20, 16, 14], [70, 45, 25], [140, 90, 45], [215, 180, 110], [170, 60, 30], [180, 180, 180]], float)
SHIRTS = np.array([[200, 40, 40], [40, 80, 200], [40, 150, 60], [230, 200, 60], [90, 90, 90], [240, 240, 240]], float)
IRIS = np.array([[60, 40, 25], [40, 90, 160], [60, 120, 70], [110, 90, 60]], float)


@dataclass(frozen=True)
class Traits:
    face_w: float
    face_h: float
    jaw: float  # 0 round .. 1 square
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: int  # 0 short, 1 long, 2 bald, 3 quiff, 4 fringe, 5 spiky, 6 curly, 7 bun
    eye_gap: float
    eye_size: float
    eye_y: float
    iris: tuple[int, int, int]
    brow_thick: float
    brow_tilt: float
    nose_len: float
    nose_w: float
    mouth_w: float
    mouth_y: float
    lips: tuple[int, int, int]
    ear: float
    beard: bool
    glasses: bool
    eye_aspect: float = 1.4  # eye width / height
    brow_arch: float = 0.0  # 0 straight .. 1 arched
    nose_type: int = 0  # 0 triangle, 1 round, 2 long
    lip_h: float = 0.5  # lip fullness
    chin: float = 0.0  # 0 round .. 1 pointed
    marks: tuple[tuple[float, float, float], ...] = ()  # moles: (x, y, radius) as shares of the face
    freckles: tuple[tuple[float, float], ...] = ()  # small dots: (x, y) as shares of the face
    wrinkles: int = 0  # forehead lines
    part: int = 0  # hair parting: -1 left, 0 none, 1 right


# population means, used to exaggerate a person's distinctive traits in caricature-like renders
_MEAN = dict(face_w=0.33, face_h=0.41, eye_gap=0.11, eye_size=0.035, nose_len=0.09, mouth_w=0.10, ear=0.05)


def _colour(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> tuple[int, int, int]:
    base = palette[rng.integers(len(palette))] + rng.normal(0, jitter, 3)
    return tuple(int(v) for v in np.clip(base, 0, 255))


def person_traits(seed: int, person: int) -> Traits:
    rng = np.random.default_rng([seed, person, 1])
    return Traits(
        face_w=rng.uniform(0.27, 0.39), face_h=rng.uniform(0.35, 0.47), jaw=rng.uniform(0, 1),
        skin=_colour(rng, SKIN, 10), hair=_colour(rng, HAIR, 15), hair_style=int(rng.integers(8)),
        eye_gap=rng.uniform(0.08, 0.14), eye_size=rng.uniform(0.025, 0.045), eye_y=rng.uniform(-0.06, 0.0),
        iris=_colour(rng, IRIS, 15), brow_thick=rng.uniform(0.006, 0.022), brow_tilt=rng.uniform(-0.4, 0.4),
        nose_len=rng.uniform(0.06, 0.13), nose_w=rng.uniform(0.025, 0.05),
        mouth_w=rng.uniform(0.07, 0.14), mouth_y=rng.uniform(0.12, 0.18),
        lips=_colour(rng, np.array([[180, 90, 90], [150, 70, 80], [200, 120, 110]], float), 12),
        ear=rng.uniform(0.03, 0.07), beard=bool(rng.random() < 0.3), glasses=bool(rng.random() < 0.25),
        eye_aspect=rng.uniform(1.0, 2.0), brow_arch=rng.uniform(0, 1), nose_type=int(rng.integers(3)),
        lip_h=rng.uniform(0.2, 1.0), chin=rng.uniform(0, 1),
        marks=tuple((rng.uniform(-0.7, 0.7), rng.uniform(-0.5, 0.7), rng.uniform(0.02, 0.05)) for _ in range(int(rng.integers(0, 4)))),
        freckles=tuple((rng.uniform(-0.6, 0.6), rng.uniform(0.0, 0.35)) for _ in range(12)) if rng.random() < 0.25 else (),
        wrinkles=int(rng.integers(0, 3)), part=int(rng.integers(-1, 2)),
    )


def caricature(t: Traits, strength: float) -> Traits:
    """Push each measurable trait away from the population mean by `strength` (1 = unchanged)."""
    changes = {k: _MEAN[k] + (getattr(t, k) - _MEAN[k]) * strength for k in _MEAN}
    return Traits(**{**t.__dict__, **changes})


def _draw_person(t: Traits, size: int, rng: np.random.Generator, outline: int | None, background: Image.Image) -> Image.Image:
    """Draw a head-and-shoulders portrait; `outline` is a line width (None = no outlines)."""
    s = size * SUPERSAMPLE
    img = background.resize((s, s))
    d = ImageDraw.Draw(img)
    ol = None if outline is None else (20, 20, 20)
    w = 0 if outline is None else outline * SUPERSAMPLE
    cx, cy = s * 0.5, s * 0.47
    fw, fh = t.face_w * s / 2, t.face_h * s / 2

    def box(x: float, y: float, rx: float, ry: float) -> list[float]:
        return [x - rx, y - ry, x + rx, y + ry]

    shirt = _colour(rng, SHIRTS, 30)  # clothes change from picture to picture; they are not identity
    d.ellipse(box(cx, s * 1.05, s * 0.42, s * 0.25), fill=shirt, outline=ol, width=w)  # shoulders
    d.rectangle([cx - fw * 0.35, cy + fh * 0.6, cx + fw * 0.35, s * 0.86], fill=t.skin, outline=ol, width=w)  # neck
    if t.hair_style == 1:  # long hair behind the head
        d.rounded_rectangle([cx - fw * 1.25, cy - fh * 1.05, cx + fw * 1.25, cy + fh * 1.25], radius=fw, fill=t.hair, outline=ol, width=w)
    er = t.ear * s
    for side in (-1, 1):
        d.ellipse(box(cx + side * fw * 0.98, cy, er * 0.6, er), fill=t.skin, outline=ol, width=w)
    # face: an ellipse blended with a rounded rectangle for squarer jaws
    d.ellipse(box(cx, cy, fw, fh), fill=t.skin, outline=ol, width=w)
    if t.jaw > 0.5:
        r = fw * (1.4 - t.jaw)
        d.rounded_rectangle([cx - fw * 0.92, cy - fh * 0.2, cx + fw * 0.92, cy + fh * 0.98], radius=r, fill=t.skin, outline=ol, width=w)
    if t.chin > 0.3:  # a pointed chin
        d.polygon([(cx - fw * 0.75, cy + fh * 0.55), (cx + fw * 0.75, cy + fh * 0.55), (cx, cy + fh * (1.0 + 0.25 * t.chin))], fill=t.skin, outline=ol)
    for mx, my_, mr in t.marks:  # moles survive every style
        d.ellipse(box(cx + mx * fw, cy + my_ * fh, mr * fw, mr * fw), fill=(70, 45, 35))
    for fx, fy in t.freckles:
        d.ellipse(box(cx + fx * fw, cy + fy * fh, 0.018 * fw, 0.018 * fw), fill=tuple(int(c * 0.7) for c in t.skin))
    for k in range(t.wrinkles):
        wy = cy - fh * (0.55 - 0.1 * k)
        d.arc(box(cx, wy + fh * 0.3, fw * 0.45, fh * 0.3), 235, 305, fill=tuple(int(c * 0.6) for c in t.skin), width=SUPERSAMPLE)
    if t.beard:
        beard = tuple(int(c * 0.9) for c in t.hair)
        d.chord(box(cx, cy + fh * 0.25, fw * 0.95, fh * 0.75), 10, 170, fill=beard, outline=ol, width=w)
    if t.hair_style in (0, 1, 4):
        d.chord(box(cx, cy - fh * 0.3, fw * 1.05, fh * 0.85), 180, 360, fill=t.hair, outline=ol, width=w)
    if t.hair_style == 3:
        d.ellipse(box(cx + fw * 0.2, cy - fh * 0.95, fw * 0.8, fh * 0.4), fill=t.hair, outline=ol, width=w)
    if t.hair_style == 4:
        d.rectangle([cx - fw * 0.9, cy - fh * 0.75, cx + fw * 0.9, cy - fh * 0.45], fill=t.hair)
    if t.hair_style == 5:  # spikes
        for k in range(7):
            x = cx - fw * 0.9 + k * fw * 0.3
            d.polygon([(x - fw * 0.15, cy - fh * 0.7), (x + fw * 0.15, cy - fh * 0.7), (x, cy - fh * 1.25)], fill=t.hair, outline=ol)
    if t.hair_style == 6:  # curls
        for k in range(9):
            a = np.pi * (1.05 + 0.9 * k / 8)
            d.ellipse(box(cx + np.cos(a) * fw * 0.95, cy - fh * 0.15 + np.sin(a) * fh * 0.85, fw * 0.22, fw * 0.22), fill=t.hair, outline=ol, width=w)
    if t.hair_style == 7:  # bun on top
        d.chord(box(cx, cy - fh * 0.3, fw * 1.02, fh * 0.8), 180, 360, fill=t.hair, outline=ol, width=w)
        d.ellipse(box(cx, cy - fh * 1.15, fw * 0.35, fw * 0.3), fill=t.hair, outline=ol, width=w)
    if t.part and t.hair_style in (0, 1, 3, 4):
        px = cx + t.part * fw * 0.45
        d.line([px, cy - fh * 1.0, px + t.part * fw * 0.1, cy - fh * 0.55], fill=tuple(int(c * 0.5) for c in t.skin), width=2 * SUPERSAMPLE)
    # eyes, brows
    ey = cy + t.eye_y * s
    er = t.eye_size * s
    for side in (-1, 1):
        ex = cx + side * t.eye_gap * s / 2 * 1.0
        d.ellipse(box(ex, ey, er * t.eye_aspect, er), fill=(250, 250, 250), outline=ol or (60, 40, 30), width=max(w, SUPERSAMPLE))
        d.ellipse(box(ex, ey, er * 0.7, er * 0.7), fill=t.iris)
        d.ellipse(box(ex, ey, er * 0.3, er * 0.3), fill=(10, 10, 10))
        by = ey - er * 1.9
        tilt = side * t.brow_tilt * er
        arch = t.brow_arch * er * 0.8
        d.line([ex - er * 1.5, by + tilt, ex, by - arch, ex + er * 1.5, by - tilt], fill=tuple(int(c * 0.8) for c in t.hair), width=max(1, int(t.brow_thick * s)), joint="curve")
        if t.glasses:
            d.ellipse(box(ex, ey, er * 2.2, er * 1.8), outline=(30, 30, 30), width=2 * SUPERSAMPLE)
    if t.glasses:
        d.line([cx - t.eye_gap * s / 2 + er * 2.2, ey, cx + t.eye_gap * s / 2 - er * 2.2, ey], fill=(30, 30, 30), width=2 * SUPERSAMPLE)
    # nose and mouth (the smile varies per image: expression)
    nose = tuple(int(c * 0.8) for c in t.skin)
    ny = ey + t.nose_len * s
    nw = t.nose_w * s / 2
    if t.nose_type == 0:
        d.polygon([(cx, ey + er), (cx - nw, ny), (cx + nw, ny)], fill=nose, outline=ol)
    elif t.nose_type == 1:
        d.ellipse(box(cx, ny - nw * 0.6, nw * 0.9, nw * 0.8), fill=nose, outline=ol, width=w)
    else:
        d.polygon([(cx, ey + er), (cx + nw * 0.4, ny), (cx - nw, ny), (cx - nw * 0.3, ny - nw * 0.6)], fill=nose, outline=ol)
    my = cy + t.mouth_y * s
    mw = t.mouth_w * s / 2
    smile = rng.uniform(0.3, 1.0) * mw * t.lip_h * 0.8
    d.chord([cx - mw, my - smile, cx + mw, my + smile], 0, 180, fill=t.lips, outline=ol or tuple(int(c * 0.7) for c in t.lips), width=max(w, SUPERSAMPLE))
    half = s / ZOOM / 2  # zoom on the head: faces fill most of the frame, as in face datasets
    return img.crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half))).resize((s, s), Image.LANCZOS)


def _photo_background(rng: np.random.Generator, size: int) -> Image.Image:
    """A cluttered scene: a colour gradient with soft blobs, like an out-of-focus room. Each blob's Gaussian is the
    outer product of a row and a column profile (2*size exponentials, not size**2)."""
    axis = np.arange(size) / size
    c0, c1 = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    a = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(a) * axis[None, :] + np.sin(a) * axis[:, None]
    arr = c0 + (c1 - c0) * ((ramp - ramp.min()) / (np.ptp(ramp) + 1e-9))[..., None]
    for _ in range(int(rng.integers(3, 8))):
        bx, by, br = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.25)
        mask = np.outer(np.exp(-((axis - by) ** 2) / (2 * br**2)), np.exp(-((axis - bx) ** 2) / (2 * br**2)))[..., None]
        arr += (rng.uniform(0, 255, 3) - arr) * mask
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _pose(img: Image.Image, rng: np.random.Generator, fill: tuple[int, int, int] | None, max_angle: float) -> Image.Image:
    """Rotate, scale and shift about the centre in one affine warp (head pose and framing)."""
    size = img.width
    angle = np.deg2rad(rng.uniform(-max_angle, max_angle))
    scale = rng.uniform(0.88, 1.12)
    dx, dy = rng.uniform(-0.07, 0.07, 2) * size
    c = size / 2
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale  # output -> input mapping
    a, b, d, e = cos, sin, -sin, cos
    coeffs = (a, b, c - a * (c + dx) - b * (c + dy), d, e, c - d * (c + dx) - e * (c + dy))
    if fill is None:  # photos: extend the scene instead of painting a border
        fill = tuple(int(v) for v in np.asarray(img)[0:4, 0:4].reshape(-1, 3).mean(0))
    return img.transform((size, size), Image.AFFINE, coeffs, resample=Image.BICUBIC, fillcolor=fill)


def render_photo(t: Traits, size: int, rng: np.random.Generator) -> Image.Image:
    """A natural-looking photo: background clutter, pose, directional light, blur and noise."""
    bg = _photo_background(rng, size * SUPERSAMPLE)
    img = _draw_person(t, size, rng, outline=None, background=bg)
    img = _pose(img, rng, fill=None, max_angle=15).resize((size, size), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.float64)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    a = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.2, 0.6) * (np.cos(a) * xx + np.sin(a) * yy)
    arr = arr * light[..., None] * rng.uniform(0.75, 1.15) + rng.normal(0, 4, 3)  # light and colour cast
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    arr = np.asarray(img, dtype=np.float64) + rng.normal(0, rng.uniform(3, 9), (size, size, 3))  # sensor noise
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def render_stylized(t: Traits, size: int, rng: np.random.Generator, style: str) -> Image.Image:
    """A stylized rendering of the same person: flat colours + outlines, pencil sketch, or posterized."""
    t = caricature(t, rng.uniform(1.0, 1.3))
    paper = Image.new("RGB", (size, size), tuple(int(v) for v in rng.uniform(225, 255, 3)))
    img = _draw_person(t, size, rng, outline=2 if style != "poster" else None, background=paper)
    img = _pose(img, rng, fill=paper.getpixel((0, 0)), max_angle=10).resize((size, size), Image.LANCZOS)
    if style == "sketch":
        gray = ImageOps.grayscale(img)
        edges = np.asarray(gray.filter(ImageFilter.FIND_EDGES).filter(ImageFilter.GaussianBlur(0.6)), float).copy()
        edges[:2], edges[-2:], edges[:, :2], edges[:, -2:] = 0, 0, 0, 0  # the filter's own frame is no edge
        shade = ImageOps.autocontrast(gray).point(lambda v: 255 - (255 - v) // 3)  # light hatching of tones
        sketch = np.minimum(np.asarray(shade, float), 255 - edges * 2.5)
        return Image.fromarray(np.clip(sketch, 0, 255).astype(np.uint8)).convert("RGB")
    if style == "poster":
        return ImageOps.posterize(img, 2)
    return img
