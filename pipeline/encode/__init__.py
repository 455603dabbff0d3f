"""Stage 2, encode: bytes both ways. One class per encoding (``depth.py``, ``images.py``;
one registry, ``depth.ENCODINGS``, that sources and layouts ask), the PNG and TIFF
writers (``png.py``, ``tiff.py``), a sample's members by extension (``codecs.py``) and
``Record``, the one description of the per-sample record (``record.py``). Sources decode
their inputs with the same codecs, so this stage sits below them."""
