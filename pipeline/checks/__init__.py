"""Stage 7, checks: everything checked before the first sample is written (the config
values, the report settings, the transforms and the sample contract on the first sample:
``checks.py``), the depth units of the first samples (``units.py``) and, after the run,
the depth a rule turned into 0 (``drops.py``). A new check of the data goes here."""
