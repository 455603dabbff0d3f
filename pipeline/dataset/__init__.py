"""Stage 5, dataset: what output.dir holds and how it is claimed. The shard placement
(``shards.py``), one ``Layout`` per output format (``layouts/``), the typed records and
stats, the lock, the config record, what overwrite may delete, atomic writes."""
