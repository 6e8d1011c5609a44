"""OVSeg (mask-adapted CLIP) core, plain PyTorch: masked crops, mask prompt tuning, the
CLIP-space class head, the CLIP ensemble, mask proposal generators (SAM), the reader of the
released mask-prompt-tuned CLIP, the frozen CLIP that classifies proposals (masked crops or mask
pooling) and the semantic map's labelling (Liang et al., CVPR 2023). The MaskFormer proposal
network and the mmseg segmentor are mm adapters (``OVSegMaskFormerHead``, ``OVSegSegmentor``)."""
from .checkpoint import (
    OVSegCLIPWeights,
    build_mask_prompt_clip,
    read_mask_embedding,
    read_ovseg_clip_checkpoint,
)
from .clip_space_head import OVSEG_TEMPERATURE, CLIPSpaceClassHead, cosine_logits, text_matrix
from .ensemble import (
    OVSEG_ENSEMBLE_WEIGHTS,
    crop_class_probs,
    ensemble_class_probs,
    head_class_probs,
    semantic_inference,
    semantic_map,
)
from .frozen_clip import CLASSIFIERS, OVSegCLIP
from .mask_pooling import mask_pool
from .mask_prompt_vit import MaskPromptCLIP
from .masked_crops import (
    DEFAULT_CHUNK_SIZE,
    MaskedCrops,
    MaskProposals,
    crop_proposals,
    encode_masked_crops,
    find_proposals,
    masked_crops,
    tight_boxes,
)
from .proposals import (
    MASK_LOGIT,
    MaskProposalGenerator,
    ProposalSet,
    SAMProposalGenerator,
    binary_masks_to_logits,
    stack_proposals,
)
from .semantic_labels import OTHERS, add_others, label_semantic_map

__all__ = [
    'MASK_LOGIT', 'MaskProposalGenerator', 'OVSegCLIPWeights', 'ProposalSet',
    'SAMProposalGenerator', 'binary_masks_to_logits', 'build_mask_prompt_clip',
    'read_mask_embedding', 'read_ovseg_clip_checkpoint', 'stack_proposals',
    'DEFAULT_CHUNK_SIZE', 'OVSEG_ENSEMBLE_WEIGHTS', 'OVSEG_TEMPERATURE', 'CLIPSpaceClassHead',
    'MaskPromptCLIP', 'MaskProposals', 'MaskedCrops', 'cosine_logits', 'crop_class_probs',
    'crop_proposals', 'encode_masked_crops', 'ensemble_class_probs', 'find_proposals',
    'head_class_probs', 'masked_crops', 'semantic_inference', 'semantic_map', 'text_matrix',
    'tight_boxes', 'CLASSIFIERS', 'OTHERS', 'OVSegCLIP', 'add_others', 'label_semantic_map',
    'mask_pool',
]
