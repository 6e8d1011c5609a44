"""Registers densevl's OpenMMLab adapters in mmseg's and mmdet's registries.

Configs import this module through ``custom_imports``; the plain-PyTorch cores never do, so
``densevl.models.clip`` / ``.text`` / ``.segmentors`` stay free of the mm stack at import time.
"""
from importlib.util import find_spec

from ..engine.export_tuned_clip_hook import ExportTunedCLIPHook
from .ovseg.region_text_tuning import RegionTextTuner
from .segmentors.clip_fpn_segmentor import CLIPFPNSegmentor
from .segmentors.denseclip_segmentor import DenseCLIPSegmentor
from .segmentors.reco_segmentor import ReCoSegmentor
from .segmentors.training_free import TrainingFreeSegmentor
from .segmentors.tta import MeanSoftmaxTTAModel

__all__ = ['CLIPFPNSegmentor', 'DenseCLIPSegmentor', 'ExportTunedCLIPHook', 'MeanSoftmaxTTAModel',
           'ReCoSegmentor', 'RegionTextTuner', 'TrainingFreeSegmentor']

if find_spec('mmdet') is not None:
    from .detectors import DenseCLIPMaskRCNN, DenseCLIPRetinaNet, OpenVocabFasterRCNN
    from .grounding.groundvlp_model import GroundVLP
    from .segmentors.ovseg_segmentor import OVSegSegmentor  # MaskFormer parts are mmdet's

    __all__ += ['DenseCLIPMaskRCNN', 'DenseCLIPRetinaNet', 'GroundVLP', 'OVSegSegmentor',
                'OpenVocabFasterRCNN']
