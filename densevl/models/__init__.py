"""Models.

The plain-PyTorch cores (:mod:`.clip`, :mod:`.text`, :mod:`.segmentors`, :mod:`.denseclip`)
need only torch and open_clip. Where mmsegmentation / mmdetection are installed, importing this
package also registers the OpenMMLab adapters (configs do it through ``custom_imports``);
without them the cores still work, e.g. on a GPU machine that has no mmcv.
"""
from importlib.util import find_spec

if find_spec('mmseg') is not None:
    from .segmentors.training_free import TrainingFreeSegmentor  # noqa: F401
    # segmentation adapters: one import line each, below
    from .segmentors.denseclip_segmentor import DenseCLIPSegmentor  # noqa: F401  # isort: skip

if find_spec('mmdet') is not None:
    # detection adapters: one import line each, below
    from .detectors import DenseCLIPMaskRCNN, DenseCLIPRetinaNet  # noqa: F401
