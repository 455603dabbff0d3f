"""Stage 4, augment: the ``Augmenter`` built from the augment config (``augmenter.py``),
the order and output sizes known before the run (``plan.py``), camera tracking
(``geometry.py``, ``homography.py``) and what each transform does (``traits.py``). The
depth transforms themselves live in ``pipeline.augment.transforms``, the ``_target_`` namespace."""
