"""KITTI raw-data calibration files in the official layout and format: one
``<date>/calib_cam_to_cam.txt`` per recording day, ``NAME: numbers`` lines for the four
cameras (S, K, D, R, T, S_rect, R_rect, P_rect), values of the 2011_09_26 and 2011_09_30
releases (P_rect_02 / P_rect_03 as published; the unrectified lines abridged to one set)."""

from __future__ import annotations

from pathlib import Path

# (fx = fy, cx, cy, P_rect_02 last column, P_rect_03 last column, S_rect) per date
DATES = {
    "2011_09_26": (
        7.215377e02,
        6.095593e02,
        1.728540e02,
        (4.485728e01, 2.163791e-01, 2.745884e-03),
        (-3.395242e02, 2.199936e00, 2.729905e-03),
        (1.242000e03, 3.750000e02),
    ),
    "2011_09_30": (
        7.070912e02,
        6.018873e02,
        1.831104e02,
        (4.688783e01, 1.178601e-01, 6.203223e-03),
        (-3.334597e02, 1.930130e00, 3.318498e-03),
        (1.226000e03, 3.700000e02),
    ),
}
UNRECTIFIED = {  # the unrectified lines, one set for every camera
    "S": (1.392000e03, 5.120000e02),
    "K": (9.597910e02, 0.0, 6.960217e02, 0.0, 9.569251e02, 2.241806e02, 0.0, 0.0, 1.0),
    "D": (-3.691481e-01, 1.968681e-01, 1.353473e-03, 5.677587e-04, -6.770705e-02),
    "R": (
        *(9.999758e-01, -5.267463e-03, -4.552439e-03),
        *(5.251945e-03, 9.999804e-01, -3.413835e-03),
        *(4.570332e-03, 3.389843e-03, 9.999838e-01),
    ),
    "T": (5.956621e-02, 2.900141e-04, 2.577209e-03),
}
R_RECT = (
    *(9.998817e-01, 1.511453e-02, -2.841595e-03),
    *(-1.511724e-02, 9.998853e-01, -9.338510e-04),
    *(2.827154e-03, 9.766976e-04, 9.999955e-01),
)


def _numbers(values: tuple[float, ...]) -> str:
    return " ".join(f"{v:.6e}" for v in values)


def _p(f: float, cx: float, cy: float, last: tuple[float, float, float]) -> str:
    return _numbers((f, 0.0, cx, last[0], 0.0, f, cy, last[1], 0.0, 0.0, 1.0, last[2]))


def calib_text(date: str) -> str:
    f, cx, cy, p02, p03, size = DATES[date]
    lines = ["calib_time: 09-Jan-2012 13:57:47", "corner_dist: 9.950000e-02"]
    for n, last in (
        ("00", (0.0, 0.0, 0.0)),
        ("01", (-3.875744e02, 0.0, 0.0)),
        ("02", p02),
        ("03", p03),
    ):
        lines += [f"{name}_{n}: {_numbers(values)}" for name, values in UNRECTIFIED.items()]
        lines.append(f"S_rect_{n}: {_numbers(size)}")
        lines.append(f"R_rect_{n}: {_numbers(R_RECT)}")
        lines.append(f"P_rect_{n}: {_p(f, cx, cy, last)}")
    return "\n".join(lines) + "\n"


def write_calib(root: Path, date: str) -> Path:
    """``root/<date>/calib_cam_to_cam.txt``; returns its path."""
    path = root / date / "calib_cam_to_cam.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(calib_text(date))
    return path
