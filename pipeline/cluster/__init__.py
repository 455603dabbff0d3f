"""Stage 10, cluster: one run spread over many jobs. The slices' records and the checks
that they belong together (``slices.py``), their merge into one dataset, local or at a
URL (``merge.py``, ``merge_remote.py``), the SLURM array with its merge job
(``slurm_launcher.py``; the launcher classes entered in Hydra's plugin table by
``hydra_launchers.py``), the check that a launcher can start jobs here
(``launchers.py``) and the sweep page callback of ``-m`` (``sweep.py``)."""
