"""DenseCLIP RetinaNet (Rao et al., CVPR 2022) on mmdet 3.x."""
from __future__ import annotations

from collections.abc import Sequence

from mmdet.models.detectors import RetinaNet
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from ...registry import DET_MODELS
from .denseclip_detector import DenseCLIPDetectorMixin, build_denseclip_parts


@DET_MODELS.register_module()
class DenseCLIPRetinaNet(DenseCLIPDetectorMixin, RetinaNet):
    """RetinaNet whose backbone is DenseCLIP's language-guided CLIP.

    The score map ``cos(dense, text) / tau`` of the ``K`` classes is concatenated to res5 before
    the FPN, and ``loss_seg`` (weight ``aux_loss_weight``) trains it against the box targets;
    see :class:`DenseCLIPDetectorMixin` and :class:`DenseCLIPDetBackbone`.

    Args:
        backbone: a :class:`DenseCLIPDetBackbone` config (without ``class_names``).
        neck: the FPN; ``in_channels=None`` fills in the backbone's (with the ``K`` score
            channels), a given list is checked against them.
        bbox_head: the RetinaHead; its ``num_classes`` is ``K``.
        class_names: a list or names file of ``K`` names; None: the dataset's classes.
        aux_loss_weight: weight of the auxiliary score-map loss (DenseCLIP: 1; 0 disables it).
        Other args: as mmdet's ``RetinaNet``.
    """

    aux_loss_key = 'loss_seg'

    def __init__(self, *, backbone: ConfigType, neck: ConfigType, bbox_head: ConfigType,
                 class_names: str | Sequence[str] | None = None, aux_loss_weight: float = 1.0,
                 train_cfg: OptConfigType = None, test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None, init_cfg: OptMultiConfig = None) -> None:
        backbone, neck, known = build_denseclip_parts(backbone, neck, class_names,
                                                      bbox_head['num_classes'])
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head, train_cfg=train_cfg,
                         test_cfg=test_cfg, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self._init_vocabulary(known, aux_loss_weight)
