"""Stage 9, publish: a finished dataset's ``README.md`` card, report and, last,
``dataset_info.json`` (``publish.py``), written by a plain run and by the merge of a
sliced run's slices alike."""
