"""DenseCLIP (Rao et al., CVPR 2022) in plain PyTorch: learned-context text encoder, context
decoder, ViT feature pyramid, the language-guided core and the detection auxiliary loss."""
from .box_targets import box_score_map_loss, rasterise_box_targets
from .context_decoder import ContextDecoder
from .context_text_encoder import ContextPromptTextEncoder
from .cropped_attention_pool import cropped_attention_pool, cropped_pool_positions
from .denseclip_core import DenseCLIPCore, DenseCLIPOutput, batched_score_map
from .vit_multilevel import CLIPViTFeaturePyramid, drop_path

__all__ = [
    'CLIPViTFeaturePyramid', 'ContextDecoder', 'ContextPromptTextEncoder', 'DenseCLIPCore',
    'DenseCLIPOutput', 'batched_score_map', 'box_score_map_loss', 'cropped_attention_pool',
    'cropped_pool_positions', 'drop_path', 'rasterise_box_targets',
]
