"""mmseg adapter of :class:`DenseCLIPCore`: DenseCLIP and its vocabulary-agnostic variant."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.config import ConfigDict
from mmseg.models.losses import accuracy
from mmseg.models.utils import resize
from mmseg.utils import ConfigType, OptConfigType, SampleList, add_prefix
from torch import Tensor, nn

from ...registry import SEG_MODELS
from ..denseclip import DenseCLIPCore
from ..denseclip.checkpoint import copy_clip_weights
from ..heads import TextCosineFPNHead  # noqa: F401  (registers the vocabulary-agnostic head)
from ..text import Vocabulary, resolve_class_names
from .clip_encoder_decoder import CLIPEncoderDecoder
from .clip_ensemble import FrozenCLIPEnsemble
from .mm_common import training_names


@SEG_MODELS.register_module()
class DenseCLIPSegmentor(CLIPEncoderDecoder):
    """DenseCLIP (Rao et al., CVPR 2022): a CLIP backbone, language-guided FPN, Semantic FPN head.

    The maths is :class:`~densevl.models.denseclip.DenseCLIPCore`'s forward; this adapter adds
    the mmseg neck and heads, the identity loss, and prediction (:class:`CLIPEncoderDecoder`).

    * **DenseCLIP**: the score map of the dense image embeddings against the context-refined
      class embeddings is concatenated to one backbone level (res5; stride 16 for ViT-B/16)
      before the FPN, and an identity auxiliary head puts a cross-entropy loss on
      ``score_map / tau`` (weight 0.4). Closed set: ``K`` score channels enter the FPN, so the
      model segments exactly as many classes as it was trained with (synonyms pooled).
    * **Vocabulary-agnostic** (``vocabulary_agnostic=True`` with a :class:`TextCosineFPNHead`):
      the FPN gets a ``C``-channel summary of the score map instead, and the head classifies
      pixels by cosine with the refined text embeddings, so any texts can be segmented.
      ``clip_ensemble`` adds a frozen copy of the CLIP whose training-free scores are ensembled
      with the head's at inference (:class:`FrozenCLIPEnsemble`).

    Args:
        clip: ``dict(model_name=..., pretrained=...)``: ``'RN50-quickgelu'``,
            ``'RN101-quickgelu'``, ``'ViT-B-16-quickgelu'`` for OpenAI's weights, or a densevl
            zoo name; an open_clip name's weights load in :meth:`init_weights`.
        neck, decode_head: the FPN (``in_channels`` filled in, score channels included) and
            ``FPNHead`` (closed set) or ``TextCosineFPNHead`` (``embed_dims`` filled in).
        class_names: default vocabulary: a list, a names file or a dataset type
            (``'ADE20KDataset'``); None: set later (``tools/test.py`` sets the dataset's).
        train_class_names: vocabulary of the training labels when it differs from
            ``class_names`` (vocabulary-agnostic training on seen classes).
        vocabulary_agnostic: fuse a K-independent summary of the score map (see the core).
        input_resolution: the image tower's positional grid is resized to
            ``input_resolution / stride`` (512 -> 16x16 for the ResNets, 640 -> 40x40 for
            ViT-B/16); None keeps CLIP's grid.
        vit, num_context, name_length, context_decoder: see :meth:`DenseCLIPCore.from_clip`.
        score_concat_index: backbone level the score map joins; default the level of the dense
            embeddings' stride.
        gamma_init, agnostic_temperature: see :class:`DenseCLIPCore`.
        tau: the identity head's temperature (its logits are ``score_map / tau``).
        identity_loss: loss config of the identity auxiliary head, or None.
        clip_ensemble: vocabulary-agnostic only: :class:`FrozenCLIPEnsemble` options; its
            weights are CLIP's original ones, which checkpoints do not hold.
        with_seg_logits: also attach mmseg's ``seg_logits`` (TTA needs them).
        auxiliary_head, train_cfg, test_cfg, data_preprocessor, init_cfg: mmseg's.
    """

    def __init__(self, *, clip: dict, neck: OptConfigType, decode_head: ConfigType,
                 class_names: str | Sequence[str] | None = None,
                 train_class_names: str | Sequence[str] | None = None,
                 vocabulary_agnostic: bool = False, input_resolution: int | None = None,
                 vit: dict | None = None, num_context: int = 8, name_length: int = 5,
                 context_decoder: dict | None = None, score_concat_index: int | None = None,
                 gamma_init: float = 1e-4, agnostic_temperature: float = 0.07,
                 tau: float = 0.07, identity_loss: OptConfigType = None,
                 clip_ensemble: dict | None = None, with_seg_logits: bool = False,
                 auxiliary_head: OptConfigType = None, train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None, data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        head_cfg = ConfigDict(decode_head)
        head_cls = head_cfg.type if isinstance(head_cfg.type, type) \
            else SEG_MODELS.get(head_cfg.type)
        self._head_takes_text = bool(getattr(head_cls, 'takes_text', False))
        if clip_ensemble is not None and not vocabulary_agnostic:
            raise ValueError('clip_ensemble weighs CLIP more for names outside the training '
                             'vocabulary; only the vocabulary-agnostic variant takes such names '
                             '(vocabulary_agnostic=True)')
        if vocabulary_agnostic != self._head_takes_text:
            raise ValueError(f'the vocabulary-agnostic variant needs a head that classifies '
                             f'against the text embeddings (TextCosineFPNHead), the closed set a '
                             f'fixed classifier (FPNHead); got vocabulary_agnostic='
                             f'{vocabulary_agnostic} with {head_cfg.type}')
        bundle = self._init_clip(clip, data_preprocessor, init_cfg)
        self._train_names = resolve_class_names(train_class_names)
        train_names = self._train_names or resolve_class_names(class_names)
        self.clip_ensemble = None
        if clip_ensemble is not None:
            self.clip_ensemble = FrozenCLIPEnsemble(model_name=clip['model_name'],
                                                    pretrained=clip.get('pretrained'),
                                                    **clip_ensemble)
            if self._pending_clip is None:
                self.clip_ensemble.load_from(bundle.model)
        self.core = DenseCLIPCore.from_clip(
            bundle.model, bundle.tokenizer, vit=vit, input_resolution=input_resolution,
            num_context=num_context, name_length=name_length, context_decoder=context_decoder,
            # until the names are known, placeholders: the count is the classifier's
            class_names=train_names or [f'class {i}' for i in range(head_cfg.num_classes)],
            score_concat_index=score_concat_index,
            gamma_init=gamma_init, vocabulary_agnostic=vocabulary_agnostic,
            agnostic_temperature=agnostic_temperature)
        levels = list(self.image_encoder.level_channels)
        levels[self.core.score_concat_index] += self.core.fused_channels
        if self._head_takes_text:
            head_cfg.setdefault('embed_dims', self.core.embed_dim)
        self.identity_loss = SEG_MODELS.build(identity_loss) if identity_loss else None
        self.tau = tau
        self._init_neck_and_heads(levels, neck=neck, decode_head=head_cfg,
                                  auxiliary_head=auxiliary_head,
                                  class_names=class_names if class_names is not None
                                  else train_class_names, with_seg_logits=with_seg_logits,
                                  train_cfg=train_cfg, test_cfg=test_cfg)

    @property
    def image_encoder(self) -> nn.Module:
        return self.core.image_encoder

    def vocabulary(self, texts: Sequence[str] | None = None) -> Vocabulary:
        """The checked vocabulary with the text encoder's tokens (tokenised once per call)."""
        return self.core.vocabulary(super().vocabulary(texts))

    def check_vocabulary(self, vocabulary: Vocabulary, *, training: bool) -> None:
        super().check_vocabulary(vocabulary, training=training)
        k = self.core.num_classes
        if not self.core.vocabulary_agnostic and vocabulary.num_classes != k:
            raise ValueError(
                f'closed-set DenseCLIP fuses the score maps of its {k} training classes into the '
                f'FPN, so it segments exactly {k} classes, not {vocabulary.num_classes}. Use the '
                'vocabulary-agnostic variant (vocabulary_agnostic=True with a TextCosineFPNHead; '
                'configs/denseclip/denseclip-agnostic_*.py) to segment any texts')

    def logits_vocabulary(self, vocabulary: Vocabulary) -> Vocabulary:
        # the closed set pools synonyms in its score map: its head scores classes
        return vocabulary if self.core.vocabulary_agnostic else vocabulary.pooled()

    def _decode(self, inputs: Tensor, vocabulary: Vocabulary | None = None):
        """The core's forward, then the neck: ``(core output, FPN levels, head inputs)``."""
        out = self.core(inputs, vocabulary)
        levels = list(self.neck(out.fused)) if self.with_neck else out.fused
        return out, levels, [out.text, *levels] if self._head_takes_text else levels

    def window_logits(self, images: Tensor, vocabulary: Vocabulary) -> Tensor:
        """The head's logits (with the frozen CLIP's scores ensembled in, when on)."""
        logits = self.decode_head.forward(self._decode(images, vocabulary)[2])
        if self.clip_ensemble is not None:
            logits = self.clip_ensemble(images, logits, vocabulary.queries,
                                        seen=set(self.training_vocabulary().queries))
        return logits

    def training_vocabulary(self) -> Vocabulary:
        """The training labels' vocabulary: ``train_class_names``, else :attr:`class_names`."""
        names = training_names(self._train_names, self.class_names, 'DenseCLIP')
        if tuple(names) == self.core.class_names:
            return self.core.default_vocabulary
        return self.core.vocabulary(names)

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:
        """FPN outputs for the vocabulary in use. Shapes: strides 4-32 of ``(B, 3, H, W)``."""
        return self._decode(inputs, self._active or self.vocabulary())[1]

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Decode-head loss, identity-head loss on ``score_map / tau``, optional auxiliary head."""
        vocab = self.training_vocabulary()
        self.check_vocabulary(vocab, training=True)
        out, levels, head_inputs = self._decode(inputs, vocab)
        losses = self._decode_head_forward_train(head_inputs, data_samples)
        if self.identity_loss is not None:
            losses.update(add_prefix(self._identity_losses(out.score_map, data_samples),
                                     'aux_identity'))
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(levels, data_samples))
        return losses

    def _identity_losses(self, score_map: Tensor, data_samples: SampleList) -> dict:
        # DenseCLIP's identity head: the score map itself as logits, resized to the labels.
        labels = torch.stack([s.gt_sem_seg.data for s in data_samples]).squeeze(1)
        logits = resize(score_map / self.tau, size=labels.shape[-2:], mode='bilinear',
                        align_corners=False)
        ignore = self.decode_head.ignore_index
        return {self.identity_loss.loss_name: self.identity_loss(logits, labels,
                                                                 ignore_index=ignore),
                'acc_seg': accuracy(logits, labels, ignore_index=ignore)}

    def _load_clip(self, source: nn.Module) -> None:
        copy_clip_weights(source, self.image_encoder, self.core.text_encoder)
        if self.clip_ensemble is not None:
            self.clip_ensemble.load_from(source)
