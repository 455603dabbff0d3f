"""Sample pictures: image | coloured depth pairs in a grid, or in labelled rows.

Composed with numpy/OpenCV (resize, colour lookup table) and Pillow (text): one fixed
depth range per picture so colours compare across cells, invalid pixels in their own
colour, one colour bar in metres. Images twice as wide as tall or wider (KITTI 1216x352)
are stacked, image over depth, so a cell stays readable. Every function here takes plain
arrays and settings and returns PNG bytes: picklable, so it can run in any process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pipeline.config.schema import ReportConfig
from pipeline.report.canvas import (
    MUTED,
    Canvas,
    colorbar_width,
    draw_colorbar,
    ellipsize,
    font,
    line_height,
    wrap,
)
from pipeline.report.colors import DepthRange, colorize, display_depth, lut, parse_color

GAP = 4  # between the two panels of a pair
CELL_GAP = 14  # between pairs
MARGIN = 12
WINDOW = ((20, 20, 20), (255, 255, 255))  # outline, inner line of a drawn window


@dataclass(frozen=True)
class Cell:
    """One image | depth pair; ``window`` (x0, y0, x1, y1, in the sample's pixels) is
    outlined on both panels, e.g. the crop window on a source image."""

    image: np.ndarray
    depth: np.ndarray
    window: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Style:
    """The picture settings a drawing needs (plain values: picklable)."""

    colormap: str
    invalid: tuple[int, int, int]
    cell_width: int
    sparse_below: float
    range: DepthRange

    @property
    def text(self) -> int:
        """Text size (pixels): readable when the picture is shown scaled to a page."""
        return max(11, self.cell_width // 16)

    @classmethod
    def of(cls, rcfg: ReportConfig, rng: DepthRange) -> Style:
        return cls(
            rcfg.colormap, parse_color(rcfg.invalid_color), rcfg.cell_width, rcfg.sparse_below, rng
        )


@dataclass(frozen=True)
class Geometry:
    """One scale for every panel of a picture (a crop looks smaller than its source)."""

    scale: float
    stacked: bool
    panel_w: int
    panel_h: int

    @classmethod
    def of(cls, cells: list[Cell | None], cell_width: int) -> Geometry:
        shapes = [c.depth.shape for c in cells if c is not None] or [(3, 4)]
        height, width = max(s[0] for s in shapes), max(s[1] for s in shapes)
        stacked = width >= 2 * height
        panel_w = 2 * cell_width + GAP if stacked else cell_width
        scale = min(panel_w / width, 3 * cell_width / height)
        return cls(scale, stacked, panel_w, max(math.ceil(height * scale), 1))

    @property
    def cell(self) -> tuple[int, int]:
        """(height, width) of a pair."""
        if self.stacked:
            return 2 * self.panel_h + GAP, self.panel_w
        return self.panel_h, 2 * self.panel_w + GAP


def _outline(rgb: np.ndarray, window: tuple[float, float, float, float], scale: float) -> None:
    x0, y0, x1, y1 = (round(v * scale) for v in window)
    h, w = rgb.shape[:2]
    x0, x1 = min(max(x0, 0), w - 1), min(max(x1 - 1, 0), w - 1)
    y0, y1 = min(max(y0, 0), h - 1), min(max(y1 - 1, 0), h - 1)
    cv2.rectangle(rgb, (x0, y0), (x1, y1), WINDOW[0], 3)
    cv2.rectangle(rgb, (x0, y0), (x1, y1), WINDOW[1], 1)


def _draw_cell(
    canvas: Canvas, y: int, x: int, cell: Cell | None, geo: Geometry, style: Style
) -> None:
    if cell is None:
        h, w = geo.cell
        canvas.fill(y, x, h, w, (238, 238, 238))
        canvas.text(y + h // 2 - 8, x + 8, "missing", font(style.text), MUTED)
        return
    height, width = cell.depth.shape
    size = (max(round(width * geo.scale), 1), max(round(height * geo.scale), 1))
    interp = cv2.INTER_AREA if geo.scale < 1 else cv2.INTER_LINEAR
    image = np.ascontiguousarray(cv2.resize(cell.image, size, interpolation=interp))
    shown = display_depth(cell.depth, size[0], size[1], style.sparse_below)
    depth = np.ascontiguousarray(colorize(shown, style.range, lut(style.colormap), style.invalid))
    if cell.window is not None:
        _outline(image, cell.window, geo.scale)
        _outline(depth, cell.window, geo.scale)
    canvas.paste(y, x, image)
    if geo.stacked:  # depth right under (or beside) its image, whatever the image's size
        canvas.paste(y + size[1] + GAP, x, depth)
    else:
        canvas.paste(y, x + size[0] + GAP, depth)


def _title(canvas: Canvas, text: str, width: int, size: int) -> None:
    f = font(size, bold=True)
    canvas.text(MARGIN, MARGIN, ellipsize(text, f, width), f)


def depth_span(depth: np.ndarray) -> str:
    """This sample's own valid depth range, e.g. ``0.71-9.8 m`` (``no depth`` if none)."""
    valid = depth[depth > 0]
    return f"{valid.min():.3g}-{valid.max():.3g} m" if valid.size else "no depth"


def collage(cells: list[Cell], keys: list[str], cols: int, style: Style, title: str) -> bytes:
    """A grid of ``cols`` columns; each cell is image | depth under its key and its own
    depth range (the colours use the picture's one range)."""
    cols = max(min(cols, len(cells)), 1)
    nrows = math.ceil(len(cells) / cols)
    geo = Geometry.of(list(cells), style.cell_width)
    cell_h, cell_w = geo.cell
    size, title_size = style.text, style.text * 5 // 4
    label_f, title_f = font(size), font(title_size, bold=True)
    label_h, title_h = line_height(label_f) + 4, line_height(title_f) + 10
    grid_w = cols * cell_w + (cols - 1) * CELL_GAP
    bar_w = colorbar_width(style.range, size)
    width = MARGIN + grid_w + 18 + bar_w + MARGIN
    top = MARGIN + title_h
    height = top + nrows * (label_h + cell_h) + (nrows - 1) * CELL_GAP + MARGIN
    canvas = Canvas(height, width)
    _title(canvas, title, width - 2 * MARGIN, title_size)
    for i, (cell, key) in enumerate(zip(cells, keys)):
        r, c = divmod(i, cols)
        x = MARGIN + c * (cell_w + CELL_GAP)
        y = top + r * (label_h + cell_h + CELL_GAP)
        canvas.text(y, x, ellipsize(f"{key}  {depth_span(cell.depth)}", label_f, cell_w), label_f)
        _draw_cell(canvas, y + label_h, x, cell, geo, style)
    bar_top = top + label_h
    draw_colorbar(
        canvas,
        bar_top,
        MARGIN + grid_w + 18,
        height - MARGIN - bar_top,
        style.range,
        lut(style.colormap),
        style.invalid,
        size,
    )
    return canvas.png()


def labelled_rows(
    rows: list[tuple[str, list[Cell | None]]],
    columns: list[str],
    style: Style,
    title: str,
    max_label_lines: int = 3,
) -> bytes:
    """One row per label (wrapped over the row's width, above it), one image | depth pair
    per column under its header (``None`` = a missing cell)."""
    ncols = max(len(columns), max((len(c) for _, c in rows), default=1), 1)
    geo = Geometry.of([c for _, cells in rows for c in cells], style.cell_width)
    cell_h, cell_w = geo.cell
    size, title_size = style.text, style.text * 5 // 4
    label_f, head_f, title_f = font(size), font(size, bold=True), font(title_size, bold=True)
    lh, title_h = line_height(label_f) + 2, line_height(title_f) + 10
    grid_w = ncols * cell_w + (ncols - 1) * CELL_GAP
    labels = [wrap(label, label_f, grid_w, max_label_lines) for label, _ in rows]
    bar_w = colorbar_width(style.range, size)
    width = MARGIN + grid_w + 18 + bar_w + MARGIN
    head_y = MARGIN + title_h
    top = head_y + line_height(head_f) + 6
    height = top + sum(len(lines) * lh + 4 + cell_h + CELL_GAP for lines in labels) + MARGIN
    canvas = Canvas(height, width)
    _title(canvas, title, width - 2 * MARGIN, title_size)
    for c, name in enumerate(columns):
        canvas.text(
            head_y, MARGIN + c * (cell_w + CELL_GAP), ellipsize(name, head_f, cell_w), head_f
        )
    y = top
    for lines, (_, cells) in zip(labels, rows):
        for line in lines:
            canvas.text(y, MARGIN, line, label_f, MUTED)
            y += lh
        y += 4
        for c in range(ncols):
            cell = cells[c] if c < len(cells) else None
            _draw_cell(canvas, y, MARGIN + c * (cell_w + CELL_GAP), cell, geo, style)
        y += cell_h + CELL_GAP
    draw_colorbar(
        canvas,
        top,
        MARGIN + grid_w + 18,
        y - CELL_GAP - top,
        style.range,
        lut(style.colormap),
        style.invalid,
        size,
    )
    return canvas.png()


def stacked(grids: list[tuple[list[Cell], list[str], int, Style, str]]) -> bytes:
    """Several ``collage`` grids one under the other, each with its own colour range
    (a mixture's parts: indoor metres and outdoor LiDAR both readable)."""
    return stack_pngs([collage(*grid) for grid in grids])


def stacked_calls(calls: list[tuple[str, str, tuple[Any, ...]]]) -> bytes | None:
    """Drawings ("module:function", args), one per part of a mixture, one under the other,
    each under a strip naming it (``label``); None when none draws anything."""
    from pipeline.report import call

    pngs = [(label, png) for label, fn, args in calls if (png := call(fn, *args))]
    if not pngs:
        return None
    return stack_pngs([png for _, png in pngs], [label for label, _ in pngs])


def stack_pngs(pngs: list[bytes], labels: list[str] | None = None) -> bytes:
    """PNG pictures one under the other on white, left-aligned (each under its label)."""
    pictures = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR) for p in pngs]
    width = max(p.shape[1] for p in pictures)
    out = []
    for i, p in enumerate(pictures):
        if labels:
            strip = np.full((28, width, 3), 255, np.uint8)
            cv2.putText(strip, labels[i], (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1,
                        cv2.LINE_AA)  # fmt: skip
            out.append(strip)
        pad = width - p.shape[1]
        out.append(cv2.copyMakeBorder(p, 0, 0, 0, pad, cv2.BORDER_CONSTANT, value=(255,) * 3))
    ok, png = cv2.imencode(".png", np.vstack(out))
    assert ok
    return png.tobytes()


# one colour per evaluation region (RGB), in bit order
REGION_COLORS = {"red": (230, 60, 50), "blue": (40, 120, 230), "yellow": (250, 190, 20),
                 "green": (40, 180, 90), "magenta": (200, 70, 200), "cyan": (20, 200, 210),
                 "orange": (250, 130, 30), "grey": (150, 150, 150)}  # fmt: skip


def tint_regions(image: np.ndarray, mask: np.ndarray, bits: list[int]) -> np.ndarray:
    """``image`` with each region (``mask & bit``) tinted and outlined in its colour."""
    out = image.astype(np.float32)
    width = max(2, round(max(image.shape[:2]) / 160))
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    for bit, color in zip(bits, REGION_COLORS.values()):
        inside = ((mask & bit) != 0).astype(np.uint8)
        rgb = np.asarray(color, np.float32)
        out[inside > 0] = 0.75 * out[inside > 0] + 0.25 * rgb
        edge = (inside > 0) & (cv2.erode(inside, kernel, borderValue=0) == 0)
        out[edge] = rgb
    return out.round().clip(0, 255).astype(np.uint8)


def regions(
    rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    names: dict[str, int],
    style: Style,
    title: str,
) -> bytes:
    """Each sample (key, image, depth, mask) with every evaluation region of ``names``
    ({name: bit}) tinted and outlined in its colour; the colours are named in the title."""
    bits = list(names.values())
    legend = ", ".join(f"{name} {color}" for name, color in zip(names, REGION_COLORS))
    labelled = [
        (key, [Cell(tint_regions(image, mask, bits), depth)]) for key, image, depth, mask in rows
    ]
    return labelled_rows(
        labelled, ["image (regions outlined) | depth"], style, f"{title}: {legend}"
    )
