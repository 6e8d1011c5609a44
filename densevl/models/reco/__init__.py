"""ReCo (Shin et al., NeurIPS 2022): retrieval and co-segmentation for zero-shot transfer.

Plain PyTorch: co-segmentation (``coseg``), the co-segmentation encoder (``patch_encoder``), the
cached reference embeddings (``references``), the score map and segmenter (``inference``) and
DenseCRF (``crf``). The retrieval index (``retrieval_index``) needs FAISS when it is loaded.
"""
from .coseg import (
    SLICINGS,
    CosegResult,
    context_weights,
    cosegment,
    language_guidance,
    reference_embedding,
)
from .crf import DenseCRFSettings, dense_crf
from .inference import RECO_PROTOCOL, ReCoSegmenter, reco_score_map
from .patch_encoder import (
    OpenCLIPPatchTokens,
    PatchTokenEncoder,
    TimmViTPatchTokens,
    create_patch_encoder,
)
from .references import ReCoSettings, ReferenceBuilder, TooFewImagesError, load_archive_images

__all__ = ['RECO_PROTOCOL', 'SLICINGS', 'CosegResult', 'DenseCRFSettings', 'OpenCLIPPatchTokens',
           'PatchTokenEncoder', 'ReCoSegmenter', 'ReCoSettings', 'ReferenceBuilder',
           'TimmViTPatchTokens', 'TooFewImagesError', 'context_weights', 'cosegment',
           'create_patch_encoder', 'dense_crf', 'language_guidance', 'load_archive_images',
           'reco_score_map', 'reference_embedding']
