"""Depth transforms the trainers write by hand, as albumentations transforms: use them as
``_target_: pipeline.augment.transforms.<Name>`` next to albumentations ones, with the same
per-transform seeding and parameter recording.

- ``RandomScale`` (FastDepth, DORN): zoom by s ~ U(scale_limit); ``mode=divide_depth``
  divides depth by s (the scene comes s times closer, the focal stays: FastDepth's
  ``depth / s``), ``mode=scale_camera`` keeps depth and lets the focal grow with the image.
- ``CanonicalCamera`` (Metric3D): one canonical focal for every sample, ``mode=depth``
  (LabelScaleCanonical: depth x focal/fx, image kept) or ``mode=resize``
  (ResizeCanonical: image x focal/((fx+fy)/2), depth kept); the ratio is recorded.
- ``ResizeToMultiple`` (Depth Anything): keep the aspect, cover a lower bound (518), each
  side a multiple of the patch size (14); image cubic, depth nearest.
- ``GammaBrightnessColor`` (BTS, AdaBins, ZoeDepth): their ``augment_image`` (gamma,
  brightness, per-channel colour on [0, 1], clipped), image only.
- ``KBCrop`` (BTS, AdaBins): the KITTI benchmark crop, bottom-centre 352x1216.
- ``EigenCrop`` / ``GargCrop`` (BTS, AdaBins evaluation): the NYU / KITTI evaluation
  region, written as the sample's validity mask (``mode=mask``) or as depth 0
  (``mode=depth``). The region is defined on the source frame and follows every crop,
  flip or resize before it.

Transforms that need the camera read the augmenter's ``pipeline.augment.geometry.Track`` from the
``camera`` target (``targets_as_params``). Depth travels as ``mask``; the optional
validity mask as ``valid`` (geometry only, never rescaled). A recorded ``depth_factor``
param tells the tracker how depth values were multiplied.
"""

from pipeline.augment.transforms.crops import EigenCrop, GargCrop, KBCrop
from pipeline.augment.transforms.photometric import GammaBrightnessColor
from pipeline.augment.transforms.resize import ResizeToMultiple
from pipeline.augment.transforms.scale import CanonicalCamera, RandomScale

__all__ = [
    "CanonicalCamera",
    "EigenCrop",
    "GammaBrightnessColor",
    "GargCrop",
    "KBCrop",
    "RandomScale",
    "ResizeToMultiple",
]
