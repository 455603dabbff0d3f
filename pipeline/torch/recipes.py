"""Per-part online recipes: ``augment=`` as one recipe for every sample, or a mapping from
a mixture's part to its recipe (``{"nyu": "bts_nyu", "kitti": "bts_kitti"}``) with
``"default"`` for the parts not named (no augmentation when absent). Each recipe is
checked against the stored sizes of its part's samples before any loader starts; a recipe
that cannot apply is one line naming the part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.dataset.reader import Reader, ReadSample
from pipeline.errors import PipelineError
from pipeline.torch.online import AugmentSpec, Online, OnlineAugment, augment_config

DEFAULT = "default"


def per_part(spec: Any, parts: list[str]) -> bool:
    """Whether ``augment=`` maps parts to recipes: a mapping whose keys are all this
    mixture's part names (or ``default``)."""
    if not isinstance(spec, Mapping) or not parts or not spec:
        return False
    return all(isinstance(k, str) and (k in parts or k == DEFAULT) for k in spec)


class Recipes:
    """The online augmentation of each part (one ``OnlineAugment`` per distinct recipe)."""

    def __init__(self, spec: AugmentSpec | Mapping[str, AugmentSpec], seed: int | None,
                 reader: Reader) -> None:  # fmt: skip
        parts = reader.parts()
        if per_part(spec, parts):
            assert isinstance(spec, Mapping)
            default = OnlineAugment(augment_config(spec.get(DEFAULT), seed))
            self.by_part = {
                part: OnlineAugment(augment_config(spec[part], seed)) if part in spec else default
                for part in parts
            }
            self.default = default
        else:
            self.default = OnlineAugment(augment_config(spec, seed))  # type: ignore[arg-type]
            self.by_part = dict.fromkeys(parts, self.default)
        self._check(reader)

    def _check(self, reader: Reader) -> None:
        sizes: dict[str, set[tuple[int, int]]] = {}
        for _, record in reader.entries:
            h, w = record.shape[:2]
            sizes.setdefault(record.dataset, set()).add((int(h), int(w)))
        for part, shapes in sizes.items():
            online = self.by_part.get(part, self.default)
            for h, w in sorted(shapes):
                try:
                    online.check([h, w])
                except PipelineError as exc:
                    name = f"part {part}" if part else "the dataset"
                    raise PipelineError(
                        f"augment for {name} ({h}x{w} samples): {exc}; give this part a "
                        f"recipe that fits, e.g. augment={{'{part or DEFAULT}': ...}}"
                    ) from None

    def output_size(self, part: str, shape: tuple[int, int]) -> tuple[int, int] | None:
        """The size a part's sample of ``shape`` has after its recipe (None: varies)."""
        online = self.by_part.get(part, self.default)
        if online.cfg is None or not online.cfg.transforms:
            return shape
        from pipeline.augment.plan import known_output_size

        return known_output_size(online.cfg, *shape)

    def __call__(self, stored: ReadSample, epoch: int) -> Online:
        return self.by_part.get(stored.dataset, self.default)(stored, epoch)
