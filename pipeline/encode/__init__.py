"""Stage 2, encode: bytes both ways. One class per depth encoding (``depth.py``), the PNG
writer (``png.py``), a sample's members by extension (``codecs.py``) and ``Record``, the
one description of the per-sample record (``record.py``). Sources decode their inputs
with the same codecs, so this stage sits below them."""
