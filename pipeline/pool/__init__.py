"""Stage 8, pool: the worker processes that write the shards. The pool that lives as long
as the process (``pool.py``, ``process_pool.py``), where workers come from
(``forkserver.py``), the loop a worker runs (``serve.py``) and its read -> augment ->
encode -> write of a shard (``worker.py``), what parent and workers send each other
(``messages.py``), how many CPUs the job was given (``cpus.py``), Ctrl-C and SIGTERM
(``interrupts.py``), and the trace and fault points the benchmark and tests use
(``trace.py``, ``faults.py``). Light on purpose: nothing heavy is imported here."""
