"""Models.

The plain-PyTorch cores (:mod:`.clip`, :mod:`.text`, :mod:`.segmentors`) need only torch and
open_clip. Where mmsegmentation is installed, importing this package also registers the OpenMMLab
adapters (configs do it through ``custom_imports``); without it the cores still work, e.g. on a
GPU machine that has no mmcv.
"""
from importlib.util import find_spec

if find_spec('mmseg') is not None:
    from .segmentors.training_free import TrainingFreeSegmentor  # noqa: F401
