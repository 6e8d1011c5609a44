"""densevl's own named CLIP models: tiny open_clip architectures, built without downloads.

Every other name is an open_clip model name (``open_clip.list_models()``), or ``hf-hub:org/repo``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..inference_protocol import InferenceProtocol

ZOO_DIR = Path(__file__).resolve().parents[2] / 'model_zoo'


@dataclass(frozen=True)
class ZooEntry:
    """A named model: an open_clip ``CLIP`` config and, when it has been trained, its weights.

    Args:
        config: keyword arguments of ``open_clip.CLIP`` (``embed_dim``, ``vision_cfg``,
            ``text_cfg``, ``quick_gelu``).
        weights: file name under ``densevl/model_zoo/``; None for a random-weight model.
        tokenizer: the open_clip model name whose tokenizer it uses.
        description: one line for listings.
        seed: seed of the random initialisation of a model without weights.
        protocol: how the model is run (:class:`InferenceProtocol`); None: the reference
            protocol of the training-free papers.
    """

    config: dict
    weights: str | None = None
    tokenizer: str = 'ViT-B-32'
    description: str = ''
    seed: int = 0
    protocol: InferenceProtocol | None = None

    @property
    def weights_path(self) -> Path | None:
        return ZOO_DIR / self.weights if self.weights else None


_TINY_TEXT = dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=1)

# The proving ground's tiny CLIPs, trained on the synthetic scene world by
# tools/train_tiny_clip.py (64-px scenes; text context 32 with the standard tokenizer).
_SYNTHETIC_TEXT = dict(context_length=32, vocab_size=49408, width=128, heads=2, layers=3)
SYNTHETIC_CONFIGS = {
    'vit': dict(config=dict(embed_dim=128, text_cfg=_SYNTHETIC_TEXT,
                            vision_cfg=dict(image_size=64, patch_size=8, width=128, layers=4,
                                            head_width=64))),
    'resnet': dict(config=dict(embed_dim=128, text_cfg=_SYNTHETIC_TEXT,
                               vision_cfg=dict(image_size=128, layers=(1, 1, 1, 1), width=16,
                                               head_width=64))),
}

# How the proving-ground models are used: native 64-px scenes, one whole-image forward, bare
# class words as prompts (the text tower learned them from "yellow, brick" captions), and SCLIP,
# the best variant on the proving-ground table.
SYNTHETIC_PROTOCOL = InferenceProtocol(short_side=64, slide=None, logit_scale=40.0,
                                       templates=('{}',), mode='sclip')

# The ResNet tower has stride 32: the 64-px scenes are upsampled to 128 px (a 4x4 grid), and
# a ModifiedResNet has the value path (MaskCLIP) but not the ViT-only attention variants.
SYNTHETIC_RN_PROTOCOL = SYNTHETIC_PROTOCOL.updated(short_side=128, mode='maskclip')

MODEL_ZOO: dict[str, ZooEntry] = {
    'clip-tiny-random': ZooEntry(
        config=dict(embed_dim=64, quick_gelu=True, text_cfg=_TINY_TEXT,
                    vision_cfg=dict(image_size=224, patch_size=16, width=64, layers=2,
                                    head_width=64)),
        description='tiny random-weight ViT-B/16-shaped CLIP: right shapes, meaningless output'),
    'clip-tiny-random-rn': ZooEntry(
        config=dict(embed_dim=64, quick_gelu=True, text_cfg=_TINY_TEXT,
                    vision_cfg=dict(image_size=224, layers=(1, 1, 1, 1), width=8,
                                    head_width=64)),
        description='tiny random-weight ModifiedResNet CLIP: right shapes, meaningless output'),
    'clip-synthetic-tiny': ZooEntry(
        config=SYNTHETIC_CONFIGS['vit']['config'], weights='clip_synthetic_tiny.pt',
        description='ViT (patch 8, width 128, 4 layers) trained on the synthetic scene world',
        protocol=SYNTHETIC_PROTOCOL),
    'clip-synthetic-tiny-rn': ZooEntry(
        config=SYNTHETIC_CONFIGS['resnet']['config'], weights='clip_synthetic_tiny_rn.pt',
        description='ModifiedResNet (width 16, 128 px) trained on the synthetic scene world',
        protocol=SYNTHETIC_RN_PROTOCOL),
}
