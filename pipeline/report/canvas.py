"""Drawing helpers for the composed pictures: fonts, text that fits (ellipsized keys,
wrapped labels), the depth colour bar, and PNG encoding.

Text is measured before anything is placed, so labels never overlap: a label is cut to
its width, and the colour bar's title sits right of the widest tick label.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.config.schema import ImageCodec
from pipeline.encode.codecs import encode_png
from pipeline.report.colors import DepthRange, nice_ticks, ramp

INK = (29, 29, 31)
MUTED = (110, 110, 115)
BACKGROUND = 255
PNG = ImageCodec(level=3)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=8)
def font(size: int, bold: bool = False) -> Font:
    """DejaVu Sans from matplotlib's data (the plots' font too); Pillow's own otherwise."""
    try:
        import matplotlib

        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        return ImageFont.truetype(
            os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name), size
        )
    except (ImportError, OSError):
        return ImageFont.load_default(size=size)


def text_width(text: str, f: Font) -> int:
    return int(np.ceil(f.getlength(text)))


def line_height(f: Font) -> int:
    ascent, descent = f.getmetrics() if hasattr(f, "getmetrics") else (f.size, 0)
    return int(ascent + descent)


def ellipsize(text: str, f: Font, width: int) -> str:
    """``text`` cut in the middle (keys differ at both ends: split and frame number)."""
    if text_width(text, f) <= width:
        return text
    keep = len(text)
    while keep > 1:
        keep -= 1
        head = (keep + 1) // 2
        tail = keep - head
        cut = text[:head] + "…" + (text[-tail:] if tail else "")
        if text_width(cut, f) <= width:
            return cut
    return "…"


def wrap(text: str, f: Font, width: int, max_lines: int = 4) -> list[str]:
    """Greedy word wrap to ``width`` pixels; a word longer than a line is ellipsized."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}" if current else word
            if text_width(candidate, f) <= width or not current:
                current = candidate
            else:
                lines.append(current)
                current = word
        lines.append(current)
    lines = [ellipsize(line, f, width) for line in lines]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], ellipsize(lines[max_lines - 1] + " …", f, width)]
    return lines


class Canvas:
    """A white RGB canvas: paste arrays, then write text (measured fonts) and encode."""

    def __init__(self, height: int, width: int) -> None:
        self.pixels = np.full((height, width, 3), BACKGROUND, np.uint8)
        self.texts: list[tuple[int, int, str, Font, tuple[int, int, int], bool]] = []

    def paste(self, y: int, x: int, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        self.pixels[y : y + h, x : x + w] = rgb

    def fill(self, y: int, x: int, h: int, w: int, rgb: tuple[int, int, int]) -> None:
        self.pixels[y : y + h, x : x + w] = rgb

    def text(self, y: int, x: int, text: str, f: Font, color: tuple[int, int, int] = INK) -> None:
        self.texts.append((y, x, text, f, color, False))

    def vertical_text(self, y: int, x: int, text: str, f: Font) -> None:
        """Text rotated 90 degrees (reads bottom to top), top-left corner at (x, y)."""
        self.texts.append((y, x, text, f, INK, True))

    def png(self) -> bytes:
        image = Image.fromarray(self.pixels)
        draw = ImageDraw.Draw(image)
        for y, x, text, f, color, vertical in self.texts:
            if not vertical:
                draw.text((x, y), text, font=f, fill=color)
                continue
            w, h = text_width(text, f), line_height(f)
            strip = Image.new("L", (w, h), 0)
            ImageDraw.Draw(strip).text((0, 0), text, font=f, fill=255)
            strip = strip.rotate(90, expand=True)
            image.paste(Image.new("RGB", strip.size, INK), (x, y), strip)
        return encode_png(np.asarray(image), PNG)


def colorbar_width(rng: DepthRange, size: int) -> int:
    """Pixels the colour bar column needs (bar, ticks, tick labels, title)."""
    f = font(size)
    labels = [f"{t:g}" for t in nice_ticks(rng.vmin, rng.vmax)]
    ticks = max((text_width(t, f) for t in labels), default=0)
    bar = size + 6 + ticks + 8 + line_height(f) + 4
    return max(bar, text_width("invalid", f) + size + 8)


def draw_colorbar(
    canvas: Canvas,
    y: int,
    x: int,
    height: int,
    rng: DepthRange,
    table: np.ndarray,
    invalid: tuple[int, int, int],
    size: int,
) -> None:
    """A vertical bar in metres at (x, y): ticks right of it, the title right of the ticks,
    and a swatch of the invalid colour below it (text ``size`` pixels)."""
    f = font(size)
    swatch = line_height(f) + 10
    bar_h = max(height - swatch, 40)
    canvas.paste(y, x, ramp(table, bar_h, size))
    widest = 0
    for t in nice_ticks(rng.vmin, rng.vmax):
        ty = y + round((rng.vmax - t) / (rng.vmax - rng.vmin) * (bar_h - 1))
        canvas.fill(ty, x + size, 1, 4, INK)
        label = f"{t:g}"
        widest = max(widest, text_width(label, f))
        top = min(max(ty - line_height(f) // 2, y - 2), y + bar_h - line_height(f) + 2)
        canvas.text(top, x + size + 6, label, f)
    title = f"depth ({rng.unit})"
    title_y = y + max((bar_h - text_width(title, f)) // 2, 0)
    canvas.vertical_text(title_y, x + size + 6 + widest + 8, title, f)
    sy = y + bar_h + 8
    canvas.fill(sy, x, line_height(f) - 2, size, invalid)
    canvas.text(sy - 2, x + size + 6, "invalid", f, MUTED)
