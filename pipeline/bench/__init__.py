"""``make bench`` (``python -m pipeline.bench``): throughput against the recipe loop and
``datasets.map`` on real photographs and synthetic renders, the limit of the workers' own
code, start-up, a sweep and memory. ``inputs`` builds the parquet inputs, ``methods`` the
compared methods (child processes), ``runs`` times depth-pipeline commands from outside,
``table`` prints; ``__main__`` runs them all."""
