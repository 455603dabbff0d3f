"""Stage 12, console: what the ``depth-pipeline`` command prints (``console.py``): the
run's summary, a config mistake as one line naming the key, the fast ``--help``."""
