"""Stage 7, run: plan -> claim -> execute -> publish (``runner.py``), the checks before
any work, the process pool and its workers (a ``messages.Job`` carries the config
sections of the stages), publish and the merge of slices, progress, signals, the trace
and the last-resort one-line handler."""
