"""The camera picture and warnings, from the ``camera`` object each shard manifest records
per sample (the one written in its ``.json``): the distribution of the focal lengths and
of the principal point, and what metric depth went through that a trainer should know.
"""

from __future__ import annotations

import numpy as np

from pipeline.augment.homography import NON_UNIFORM_TOL, axis_scales
from pipeline.dataset.records import SampleRecord


def _scales(samples: list[SampleRecord]) -> np.ndarray:
    """(x, y) scale of each sample's pixel map (1, 1 when nothing rescaled it)."""
    return np.array(
        [axis_scales(np.reshape(s.camera.homography, (3, 3))) for s in samples], dtype=float
    ).reshape(-1, 2)


def warnings(samples: list[SampleRecord]) -> list[str]:
    """One line per thing metric depth went through that its camera does not make plain."""
    tracked = [s for s in samples if s.camera is not None]
    if not tracked:
        return []
    total = len(tracked)
    scales = _scales(tracked)
    known = np.array([s.camera.known for s in tracked])
    out = []
    stretch = scales[:, 0] / scales[:, 1]
    uneven = np.abs(stretch - 1.0) > NON_UNIFORM_TOL
    if uneven.any():
        out.append(
            f"warning: {int(uneven.sum())} of {total} samples were rescaled non-uniformly "
            f"(x/y scale {stretch[uneven].min():.3f}-{stretch[uneven].max():.3f}): metric depth "
            f"no longer fits one focal length. fx and fy are written apart; a trainer that "
            f"uses one focal (BTS-style lists) is off. Keep the aspect, or refuse it with "
            f"augment.camera=strict."
        )
    approximate = sum(s.camera.approximate for s in tracked)
    if approximate:
        out.append(
            f"warning: {approximate} of {total} samples went through a rotation, shear or "
            f"warp no pinhole camera expresses: their camera is approximate (each .json "
            f"holds the homography)."
        )
    rescaled = ~known & (np.abs(scales - 1.0).max(axis=1) > 1e-9)
    if rescaled.any():
        out.append(
            f"warning: {int(rescaled.sum())} of {total} samples were rescaled (x "
            f"{scales[rescaled].min():.2f}-{scales[rescaled].max():.2f}) but the source has no "
            f"camera, so the focal length their metric depth goes with is untracked; set "
            f"source.camera.fx (fy, cx, cy) or use a source that carries one."
        )
    return out


def arrays(samples: list[SampleRecord]) -> dict[str, np.ndarray] | None:
    """fx, fy, cx, cy, approximate (one entry per sample whose camera is known) and the
    largest frame (height, width): the picklable inputs of ``draw``."""
    known = [s for s in samples if s.camera is not None and s.camera.known]
    if not known:
        return None
    out = {
        k: np.array([getattr(s.camera, k) for s in known], dtype=float)
        for k in ("fx", "fy", "cx", "cy")
    }
    out["approximate"] = np.array([s.camera.approximate for s in known])
    out["frame"] = np.max([s.shape for s in known], axis=0)[:2]
    return out


def draw(known: dict[str, np.ndarray] | None, dpi: int) -> bytes:
    """Histogram of fx and fy; principal points over the image frame. PNG bytes."""
    from pipeline.report.plots import figure, png

    fig = figure(9.0, 3.4, left=0.8, right=0.2, bottom=0.6, top=0.4)
    left, right = fig.subplots(1, 2, gridspec_kw={"wspace": 0.3})
    if known is None:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no camera known", ha="center", va="center")
            ax.set_axis_off()
    else:
        fx, fy, cx, cy = known["fx"], known["fy"], known["cx"], known["cy"]
        bins = np.histogram_bin_edges(np.concatenate([fx, fy]), bins=min(40, fx.size + 1))
        left.hist(fx, bins=bins, alpha=0.6, label="fx", color="tab:blue")
        left.hist(fy, bins=bins, alpha=0.6, label="fy", color="tab:orange")
        left.set_xlabel("focal length (pixels)")
        left.set_ylabel("samples")
        left.legend(fontsize=8)
        approximate = known["approximate"]
        right.scatter(cx[~approximate], cy[~approximate], s=6, label="exact")
        if approximate.any():
            right.scatter(cx[approximate], cy[approximate], s=6, c="tab:red", label="approximate")
        height, width = known["frame"]
        right.add_patch(_frame(width, height))
        right.set_xlim(-0.05 * width, 1.05 * width)
        right.set_ylim(1.05 * height, -0.05 * height)  # image rows grow downwards
        right.set_aspect("equal")
        right.set_xlabel("cx (pixels)")
        right.set_ylabel("cy (pixels)")
        right.legend(fontsize=8)
    fig.suptitle("camera of the written samples", fontsize=10)
    return png(fig, dpi)


def _frame(width: float, height: float):  # noqa: ANN202 - a matplotlib patch
    from matplotlib.patches import Rectangle

    return Rectangle((-0.5, -0.5), width, height, fill=False, ls="--", lw=1, color="grey")


def caption(samples: list[SampleRecord]) -> str:
    known = [s.camera for s in samples if s.camera is not None and s.camera.known]
    if not known:
        return "camera: unknown for every sample (set source.camera.fx ... to record one)"
    fx = np.array([c.fx for c in known])
    return (
        f"focal lengths (fx {fx.min():.1f}-{fx.max():.1f} px) and principal points of "
        f"{len(known)} samples, pixel centres at integer coordinates; dashed: the image frame"
    )
