"""The offline augmentation, on the fly: the same ``Augmenter`` built from the same
``augment`` config, drawing from ``SeedSequence([seed, index, copy])`` at epoch 0 (the
offline run's streams: the same pixels, depth and camera, bit for bit) and from
``[seed, index, copy, epoch]`` later, so each epoch sees new draws.

The augmenter's input is what the offline run augments: the source sample after
``sources.finalize`` (uint8 RGB, float32 metres with 0 = invalid, the source camera).
A dataset written with ``augment=none`` and float TIFF depth stores exactly that, so
augmenting it online at epoch 0 gives the dataset an offline run with the recipe writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.augment.augmenter import Augmenter
from pipeline.augment.plan import known_output_size
from pipeline.config.schema import AugmentConfig, config_error
from pipeline.dataset.reader import ReadSample
from pipeline.errors import PipelineError, SampleError
from pipeline.sample import Augmented, Origin, Sample

CONF_AUGMENT = Path(__file__).resolve().parents[2] / "conf" / "augment"
AugmentSpec = AugmentConfig | Mapping[str, Any] | str | Path | None


def presets() -> list[str]:
    """The names ``augment=`` accepts (``conf/augment/*.yaml``)."""
    return sorted(p.stem for p in CONF_AUGMENT.glob("*.yaml"))


def augment_config(spec: AugmentSpec, seed: int | None = None) -> AugmentConfig | None:
    """An ``AugmentConfig`` from a preset name (``"bts_nyu"``), a YAML path, a mapping
    with ``transforms`` (a DictConfig included) or a mapping of transforms alone; None for
    no augmentation. ``seed`` replaces the config's seed (use the offline run's)."""
    if spec is None:
        return None
    if not isinstance(spec, (AugmentConfig, Mapping, str, Path)):
        raise PipelineError(
            f"augment={spec!r:.60}: expected a preset name ({', '.join(presets()[:3])}, ...), "
            f"a YAML path, a mapping of transforms or None, not {type(spec).__name__}"
        )
    if isinstance(spec, AugmentConfig):
        cfg = spec
    else:
        data = _plain(spec)
        if "transforms" not in data and "seed" not in data:
            data = {"transforms": data}  # a bare transform mapping
        try:
            merged = OmegaConf.merge(OmegaConf.structured(AugmentConfig), data)
            obj = OmegaConf.to_object(merged)
        except OmegaConfBaseException as exc:
            raise config_error(exc, "augment") from None
        assert isinstance(obj, AugmentConfig)
        cfg = obj
    if seed is not None:
        cfg = AugmentConfig(seed=seed, copies=cfg.copies, camera=cfg.camera,
                            transforms=dict(cfg.transforms))  # fmt: skip
    return cfg


def _plain(spec: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(spec, DictConfig):
        out = OmegaConf.to_container(spec, resolve=True)
        assert isinstance(out, dict)
        return out
    if isinstance(spec, Mapping):
        bad = [k for k in spec if not isinstance(k, str)]
        if bad:
            raise PipelineError(f"augment: key {bad[0]!r} is not a name (keys are strings)")
        return dict(spec)
    path = Path(spec)
    if not path.suffix:
        path = CONF_AUGMENT / f"{spec}.yaml"
        if not path.is_file():
            raise PipelineError(
                f"augment={spec}: no such preset; choose one of: {', '.join(presets())}, "
                f"or pass a YAML path or a transforms mapping"
            )
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except (OSError, OmegaConfBaseException) as exc:
        raise PipelineError(f"augment={spec}: cannot read {path} ({exc})") from None
    if not isinstance(loaded, dict):
        raise PipelineError(f"augment={spec}: {path} is not a mapping of augment keys")
    return loaded


@dataclass
class Online:
    """One sample as the trainer gets it, before tensors."""

    stored: ReadSample
    sample: Augmented
    params: dict[str, Any] | None  # {transform: applied params or None}, None = no augment


class OnlineAugment:
    """Applies ``cfg`` to stored samples per (epoch, index, copy); ``None`` passes them."""

    def __init__(self, cfg: AugmentConfig | None) -> None:
        self.cfg = cfg
        self._augmenter: Augmenter | None = None  # built on first use, in each worker

    def __getstate__(self) -> dict[str, Any]:
        return {"cfg": self.cfg, "_augmenter": None}  # albumentations objects stay put

    @property
    def augmenter(self) -> Augmenter | None:
        if self.cfg is not None and self.cfg.transforms and self._augmenter is None:
            self._augmenter = Augmenter(self.cfg)
        return self._augmenter

    def check(self, image_size: Any = None) -> None:
        """Build the transforms now and check fixed-size crops against the dataset's image
        size ([H, W] when all samples share it): one-line errors before any loader starts."""
        if self.augmenter is None or self.cfg is None:
            return
        one_size = isinstance(image_size, list) and len(image_size) == 2
        if one_size and all(isinstance(n, int) for n in image_size):
            known_output_size(self.cfg, *image_size)

    def __call__(self, stored: ReadSample, epoch: int) -> Online:
        source = stored.record.source
        origin = Origin(source.kind, source.location, stored.dataset, stored.data_type)
        augmenter = self.augmenter
        if augmenter is None:
            passed = Augmented(
                stored.key, stored.key, origin, stored.index, stored.copy, stored.image,
                stored.depth, stored.camera, mask=stored.mask,
            )  # fmt: skip
            return Online(stored, passed, None)
        if stored.mask is not None:
            raise PipelineError(
                f"sample {stored.key}: this dataset has evaluation masks, which online "
                f"augmentation does not move; write the base dataset without the mask "
                f"transform (EigenCrop/GargCrop) and add it to the online recipe instead"
            )
        source = Sample(stored.key, stored.image, stored.depth, origin, stored.camera)
        try:
            out = augmenter(source, stored.index, stored.copy, epoch)
        except Exception as exc:  # a transform failing on this sample's data
            detail = " ".join(str(exc).split())
            raise SampleError(stored.key, f"online augmentation failed: {detail}") from None
        image = out.image
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            shape = "x".join(map(str, image.shape))
            raise PipelineError(
                f"sample {stored.key}: the online augment recipe turns the image into "
                f"{image.dtype} ({shape}); it must stay uint8 HxWx3 RGB, as offline: drop the "
                f"transform that does it (e.g. Normalize: normalise the tensors after loading)"
            )
        return Online(stored, out, out.params)
