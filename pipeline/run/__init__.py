"""Stage 11, run: one run, orchestrated: plan -> claim -> execute -> publish
(``runner.py``), its progress display (``progress.py``) and the step it is at for the
last-resort one-line handler (``crash.py``). The steps themselves live in the stages
below: ``checks``, ``pool``, ``publish``, and ``cluster`` for one slice of a sliced run."""
