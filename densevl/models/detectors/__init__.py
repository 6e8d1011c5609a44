"""mmdet adapters: DenseCLIP RetinaNet and Mask R-CNN, and the open-vocabulary Faster R-CNN
(registered in mmdet's MODELS)."""
from .clip_pyramid_backbone import CLIPPyramidBackbone
from .denseclip_backbone import DenseCLIPDetBackbone
from .denseclip_detector import DenseCLIPDetectorMixin
from .denseclip_mask_rcnn import DenseCLIPMaskRCNN
from .denseclip_retinanet import DenseCLIPRetinaNet
from .open_vocab_rcnn import OpenVocabFasterRCNN
from .text_embedding_bbox_head import TextEmbeddingBBoxHead

__all__ = ['CLIPPyramidBackbone', 'DenseCLIPDetBackbone', 'DenseCLIPDetectorMixin',
           'DenseCLIPMaskRCNN', 'DenseCLIPRetinaNet', 'OpenVocabFasterRCNN',
           'TextEmbeddingBBoxHead']
