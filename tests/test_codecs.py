"""Float32 depth must round-trip bit-exactly through every common reader."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from pipeline.config.schema import DepthCodec, ImageCodec
from pipeline.encode import codecs


def _depth(rng: np.random.Generator) -> np.ndarray:
    d = rng.uniform(0.5, 10.0, size=(48, 64)).astype(np.float32)
    d[5:9, 10:20] = 0.0  # invalid block
    d[0, 0] = np.nextafter(np.float32(1.0), np.float32(2.0))  # one ulp above 1
    return d


@pytest.mark.parametrize(
    "codec",
    [
        DepthCodec("none"),
        DepthCodec("zlib", predictor=3),
        DepthCodec("zlib", level=1, predictor=3),
        DepthCodec("lzw"),
    ],
    ids=["none", "zlib-pred3", "zlib1-pred3", "lzw"],
)
def test_depth_tiff_roundtrips_bit_exactly_in_tifffile_pillow_opencv(codec, rng):
    depth = _depth(rng)
    data = codecs.encode_tiff(depth, codec)
    by_tifffile = tifffile.imread(io.BytesIO(data))
    by_pillow = np.array(Image.open(io.BytesIO(data)))
    by_opencv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    for name, got in {"tifffile": by_tifffile, "pillow": by_pillow, "opencv": by_opencv}.items():
        assert got.dtype == np.float32, name
        assert got.shape == depth.shape, name
        assert got.tobytes() == depth.tobytes(), name


def test_zstd_depth_roundtrips_in_tifffile(rng):
    depth = _depth(rng)
    data = codecs.encode_tiff(depth, DepthCodec("zstd", predictor=3))
    assert tifffile.imread(io.BytesIO(data)).tobytes() == depth.tobytes()


def test_png_roundtrip_is_rgb_and_lossless(rng):
    image = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    data = codecs.encode_png(image, ImageCodec(level=1))
    assert np.array_equal(np.array(Image.open(io.BytesIO(data)).convert("RGB")), image)
    assert np.array_equal(codecs.decode("png", data), image)


def test_tiff_bytes_are_deterministic(rng):
    depth = _depth(rng)
    codec = DepthCodec("zlib", predictor=3)
    assert codecs.encode_tiff(depth, codec) == codecs.encode_tiff(depth.copy(), codec)


def test_png_decode_matches_opencv_reader_for_every_layout(rng):
    import cv2
    from PIL import Image

    from pipeline.encode import codecs

    rgb = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)

    def png(im: Image.Image) -> bytes:
        buf = io.BytesIO()
        im.save(buf, "PNG")
        return buf.getvalue()

    layouts = [
        png(Image.fromarray(rgb)),
        png(Image.fromarray(np.dstack([rgb, rgb[..., 0]]))),  # RGBA: alpha dropped
        png(Image.fromarray(rgb).convert("P")),  # palette: expanded
        png(Image.fromarray(rgb).convert("LA")),  # grey + alpha: grey RGB
        png(Image.fromarray(rgb[..., 0])),
        cv2.imencode(".png", rgb[..., 0].astype(np.uint16) * 200)[1].tobytes(),
    ]
    for data in layouts:
        want = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if want.ndim == 3:
            want = cv2.cvtColor(
                want, cv2.COLOR_BGRA2RGB if want.shape[2] == 4 else cv2.COLOR_BGR2RGB
            )
        got = codecs.decode("png", data)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    with pytest.raises(ValueError, match="PNG"):
        codecs.decode("png", layouts[0][:100])


@pytest.mark.parametrize("level", [0, 1, 6, 9])
@pytest.mark.parametrize("kind", ["rgb8", "grey8", "grey16"])
def test_png_encoder_output_reads_back_exactly_in_pillow_opencv_imagecodecs(kind, level, rng):
    import imagecodecs

    shape = {"rgb8": (21, 34, 3), "grey8": (21, 34), "grey16": (21, 34)}[kind]
    dtype = np.uint16 if kind == "grey16" else np.uint8
    image = rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)
    image[3:9, 4:20] = 7  # a flat patch, as in real pictures
    data = codecs.encode_png(image, ImageCodec(level=level))
    by_opencv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if by_opencv.ndim == 3:
        by_opencv = cv2.cvtColor(by_opencv, cv2.COLOR_BGR2RGB)
    with Image.open(io.BytesIO(data)) as im:
        im.verify()  # checks every chunk's CRC
    readers = (Image.open(io.BytesIO(data)), by_opencv, imagecodecs.png_decode(data))
    for got in (*map(np.array, readers), codecs.decode("png", data)):
        assert got.dtype == image.dtype and np.array_equal(got, image)


def test_our_png_decoder_checks_the_data_it_takes_the_fast_path_for(rng):
    image = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    data = bytearray(codecs.encode_png(image, ImageCodec(level=1)))
    data[len(data) // 2] ^= 0xFF  # inside the IDAT stream: its Adler-32 no longer matches
    with pytest.raises(ValueError, match="cannot decode PNG"):
        codecs.decode("png", bytes(data))


def _tiff(array: np.ndarray, **options) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, **options)
    return buf.getvalue()


@pytest.mark.parametrize(
    "options",
    [{}, {"byteorder": ">"}, {"bigtiff": True}, {"rowsperstrip": 7}, {"compression": "zlib"},
     {"tile": (16, 16)}],
    ids=["plain", "big-endian", "bigtiff", "strips", "zlib", "tiled"],
)  # fmt: skip
def test_depth_tiff_reader_agrees_with_tifffile_on_every_layout(options, rng):
    depth = rng.uniform(0.1, 80.0, size=(37, 53)).astype(np.float32)
    got = codecs.decode("depth.tiff", _tiff(depth, **options))
    assert got.dtype == np.float32 and got.flags.writeable and np.array_equal(got, depth)


def test_depth_tiff_reader_leaves_pages_channels_and_cut_files_to_tifffile(rng):
    pages = rng.uniform(1, 2, size=(2, 5, 6)).astype(np.float32)
    assert codecs.decode("depth.tiff", _tiff(pages)).shape == (2, 5, 6)  # not page 1 alone
    two = rng.uniform(1, 2, size=(5, 6, 2)).astype(np.float32)
    both = _tiff(two, photometric="minisblack", planarconfig="contig")
    assert codecs.decode("depth.tiff", both).shape == (5, 6, 2)
    whole = _tiff(rng.uniform(1, 2, size=(40, 50)).astype(np.float32))
    with pytest.raises(Exception):  # noqa: B017 (tifffile's own error for a cut file)
        codecs.decode("depth.tiff", whole[:-100])


def test_png_encoder_rejects_what_png_cannot_hold():
    with pytest.raises(ValueError, match="PNG"):
        codecs.encode_png(np.zeros((4, 4), np.float32), ImageCodec())
