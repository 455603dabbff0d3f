"""Stage 1, config: the typed schemas Hydra's YAML merges onto (``schema.py``; one per
source kind in ``sources.py``), choices, transform arguments, the Hydra glue and the
names and keys that may become paths. Nothing here imports a later stage."""
