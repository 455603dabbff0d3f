"""A new encoding is its class and one line in the registry (``encode.depth.ENCODINGS``):
a toy depth encoding registered here, and nowhere else, is sniffed and read by a source
(its header's size checked before decoding) and decoded as a written member by the
layouts; without the line, the same file is refused."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from conftest import make_cfg, read_tar
from PIL import Image

from pipeline.dataset.layouts import decode_depth
from pipeline.encode import depth as encodings
from pipeline.encode.depth import DepthEncoding, EncodedDepth
from pipeline.errors import PipelineError
from pipeline.run.runner import run

H, W = 12, 16
PLAIN = ["augment=none", "runtime.progress=false", "report.enabled=false", "runtime.workers=1"]


class ToyDepth(DepthEncoding):
    """Float32 metres after an 8-byte header: ``TOYD``, then width and height (uint16)."""

    name, ext, exts, magic = "toy", "depth.toy", ("toy",), (b"TOYD",)
    image = False

    def encode(self, depth: np.ndarray) -> EncodedDepth:
        h, w = depth.shape
        header = b"TOYD" + struct.pack("<HH", w, h)
        return EncodedDepth(header + depth.astype("<f4").tobytes(), depth)

    @classmethod
    def declared(cls, data: bytes) -> tuple[int, str] | None:
        w, h = struct.unpack_from("<HH", data, 4)
        return w * h, f"{w}x{h}"

    @classmethod
    def read(cls, data: bytes) -> np.ndarray:
        w, h = struct.unpack_from("<HH", data, 4)
        return np.frombuffer(data, "<f4", count=w * h, offset=8).reshape(h, w)

    def info(self) -> dict[str, Any]:
        return super().info() | {"invalid": 0}

    def words(self) -> str:
        return "toy float32, metres"

    def summary(self) -> str:
        return "toy float32 in metres"


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(encodings.ENCODINGS, "toy", ToyDepth)  # the one registry line


def _depth() -> np.ndarray:
    depth = np.random.default_rng(3).uniform(0.5, 9.0, (H, W)).astype(np.float32)
    depth[2:4, 5:9] = 0.0
    return depth


def _folder(root: Path, depth_bytes: bytes) -> list[str]:
    """``image/a.png`` and ``depth/a.bin`` (a name no encoding claims: the bytes are
    sniffed); the folder source's arguments to read it."""
    (root / "image").mkdir(parents=True)
    (root / "depth").mkdir()
    rgb = np.random.default_rng(4).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(root / "image" / "a.png")
    (root / "depth" / "a.bin").write_bytes(depth_bytes)
    return [
        "source=folder",
        f"source.path={root}",
        "source.image_glob=image/*.png",
        "source.depth_path='depth/{stem}.bin'",
    ]


def test_a_registered_encoding_is_sniffed_and_read_by_a_source(tmp_path, toy):
    depth = _depth()
    args = _folder(tmp_path / "src", ToyDepth().encode(depth).data)
    out = tmp_path / "out"
    result = run(make_cfg(out, *PLAIN, *args, small=False))
    assert (result.written, result.skipped) == (1, 0)
    member = read_tar(out / "train-000000.tar")["a"]["depth.tiff"]
    written = tifffile.imread(io.BytesIO(member))
    assert written.tobytes() == depth.tobytes()


def test_its_header_size_is_checked_before_decoding(tmp_path, toy):
    bomb = b"TOYD" + struct.pack("<HH", 60000, 60000)  # declares 3.6e9 pixels, holds none
    args = _folder(tmp_path / "src", bomb)
    out = tmp_path / "out"
    with pytest.raises(PipelineError, match=r"60000x60000 pixels.*decompression bomb"):
        run(make_cfg(out, *PLAIN, *args, small=False))


def test_the_layouts_decode_it_as_a_written_member(toy):
    depth = _depth()
    data = ToyDepth().encode(depth).data
    assert decode_depth("depth.toy", data, 1.0).tobytes() == depth.tobytes()
    assert "depth.toy" in encodings.member_exts()
    assert type(encodings.from_info(ToyDepth().info())) is ToyDepth


def test_without_its_registry_line_the_same_file_is_refused(tmp_path):
    args = _folder(tmp_path / "src", ToyDepth().encode(_depth()).data)
    with pytest.raises(PipelineError, match="not an image"):
        run(make_cfg(tmp_path / "out", *PLAIN, *args, small=False))
    with pytest.raises(ValueError, match=r"no depth encoding for member \.depth\.toy"):
        decode_depth("depth.toy", b"TOYD", 1.0)
