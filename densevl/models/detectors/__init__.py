"""mmdet adapters: DenseCLIP RetinaNet and Mask R-CNN (registered in mmdet's MODELS)."""
from .denseclip_backbone import DenseCLIPDetBackbone
from .denseclip_detector import DenseCLIPDetectorMixin
from .denseclip_mask_rcnn import DenseCLIPMaskRCNN
from .denseclip_retinanet import DenseCLIPRetinaNet

__all__ = ['DenseCLIPDetBackbone', 'DenseCLIPDetectorMixin', 'DenseCLIPMaskRCNN',
           'DenseCLIPRetinaNet']
