"""Dense CLIP image encoders over open_clip (plain PyTorch, no OpenMMLab imports)."""
from .dense_output import DenseOutput
from .dense_resnet import CLIPDenseResNet
from .dense_vit import CLIPDenseViT
from .factory import (
    CLIPBundle,
    available_models,
    build_dense_encoder,
    check_activation,
    create_clip,
    image_tower,
    is_modified_resnet,
)
from .last_block import DENSE_MODES
from .model_zoo import MODEL_ZOO
from .pos_embed import resize_attnpool_pos_embed, resize_vit_pos_embed
from .score_map import dense_score_map, score_map
from .vit_pyramid import CLIPViTFeaturePyramid

__all__ = [
    'DENSE_MODES', 'MODEL_ZOO', 'CLIPBundle', 'CLIPDenseResNet', 'CLIPDenseViT',
    'CLIPViTFeaturePyramid', 'DenseOutput', 'available_models', 'build_dense_encoder',
    'check_activation', 'create_clip', 'dense_score_map', 'image_tower', 'is_modified_resnet',
    'resize_attnpool_pos_embed', 'resize_vit_pos_embed', 'score_map',
]
