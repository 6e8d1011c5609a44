"""DenseCLIP (Rao et al., CVPR 2022) in plain PyTorch: the context decoder, the language-guided
core, its builder and the detection auxiliary loss. Its image encoders live in
:mod:`densevl.models.clip` (``CLIPDenseResNet``, ``CLIPViTFeaturePyramid``), its learned-context
text encoder in :mod:`densevl.models.text` (``ContextPromptTextEncoder``); both are re-exported
here as the parts DenseCLIP is made of."""
from ..clip.vit_pyramid import CLIPViTFeaturePyramid, drop_path
from ..text.context_prompt_encoder import ContextPromptTextEncoder
from .box_targets import box_score_map_loss, rasterise_box_targets
from .context_decoder import ContextDecoder
from .denseclip_core import (
    DenseCLIPCore,
    DenseCLIPOutput,
    build_denseclip_encoders,
    build_image_encoder,
)

__all__ = [
    'CLIPViTFeaturePyramid', 'ContextDecoder', 'ContextPromptTextEncoder', 'DenseCLIPCore',
    'DenseCLIPOutput', 'box_score_map_loss', 'build_denseclip_encoders', 'build_image_encoder',
    'drop_path', 'rasterise_box_targets',
]
