"""Dense CLIP image encoders over open_clip (plain PyTorch, no OpenMMLab imports)."""
from .dense_output import DenseOutput
from .dense_resnet import CLIPDenseResNet
from .dense_vit import CLIPDenseViT
from .factory import CLIPBundle, available_models, build_dense_encoder, create_clip
from .last_block import DENSE_MODES
from .model_zoo import MODEL_ZOO
from .pos_embed import resize_attnpool_pos_embed, resize_vit_pos_embed
from .score_map import score_map

__all__ = [
    'DENSE_MODES', 'MODEL_ZOO', 'CLIPBundle', 'CLIPDenseResNet', 'CLIPDenseViT', 'DenseOutput',
    'available_models', 'build_dense_encoder', 'create_clip', 'resize_attnpool_pos_embed',
    'resize_vit_pos_embed', 'score_map',
]
