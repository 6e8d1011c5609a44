"""mmseg adapter of :class:`DenseCLIPCore`: DenseCLIP, its vocabulary-agnostic variant and the
CLIP-FPN baseline, as an :class:`mmseg.models.segmentors.EncoderDecoder`."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.losses import accuracy
from mmseg.models.segmentors import BaseSegmentor, EncoderDecoder
from mmseg.models.utils import resize
from mmseg.structures import SegDataSample
from mmseg.utils import ConfigType, OptConfigType, SampleList, add_prefix
from torch import Tensor, nn

# Runner checkpoints (iter_*.pth) of this model must load wherever it is built, e.g. in
# OpenVocabSegInferencer(config, weights=...), under torch's weights-only torch.load.
from ... import engine  # noqa: F401
from ...registry import SEG_MODELS
from ..clip import MODEL_ZOO, CLIPDenseResNet, create_clip
from ..denseclip import ContextDecoder, ContextPromptTextEncoder, DenseCLIPCore, batched_score_map
from ..denseclip.checkpoint import copy_clip_weights, set_position_grid
from ..heads import TextCosineFPNHead  # noqa: F401  (registers the vocabulary-agnostic head)
from ..text import parse_class_names
from .clip_ensemble import FrozenCLIPEnsemble
from .denseclip_parts import (  # noqa: F401  (check_activation: part of this module's API)
    SegmentorVocabulary,
    check_activation,
    drop_embedding_head,
    image_encoder_for,
    resolve_class_names,
)
from .label_assignment import assign_labels, best_queries, pool_query_probs
from .slide_inference import SlideScores, slide_windows, whole_image
from .zero_shot_segmenter import Segmentation

STRIDES = (4, 8, 16, 32)


@SEG_MODELS.register_module()
class DenseCLIPSegmentor(EncoderDecoder):
    """DenseCLIP (Rao et al., CVPR 2022): a CLIP backbone, language-guided FPN, Semantic FPN head.

    The maths is :class:`~densevl.models.denseclip.DenseCLIPCore`'s; this adapter adds the mmseg
    neck and heads. Prediction places windows and resizes as :class:`EncoderDecoder`'s slide /
    whole inference does, but labels come from the low-resolution logits through the fused
    upsample-argmax, so no ``(K, H, W)`` tensor is built unless ``with_seg_logits`` asks for one.

    * **DenseCLIP** (``use_context=True``): the score map of the dense image embeddings against
      the context-refined class embeddings is concatenated to one backbone level (res5; stride 16
      for ViT-B/16) before the FPN, and an identity auxiliary head puts a cross-entropy loss on
      ``score_map / tau`` (weight 0.4). Closed set: ``K`` score channels enter the FPN, so the
      model segments exactly as many texts as it was trained with.
    * **Vocabulary-agnostic** (``vocabulary_agnostic=True`` with a :class:`TextCosineFPNHead`):
      the FPN gets a ``C``-channel summary of the score map instead, and the head classifies
      pixels by cosine with the refined text embeddings, so any texts can be segmented.
      ``clip_ensemble`` adds a frozen copy of the CLIP whose training-free scores are ensembled
      with the head's at inference, CLIP weighing more for names outside the training
      vocabulary (:class:`FrozenCLIPEnsemble`).
    * **CLIP-FPN baseline** (``use_context=False``, ``identity_loss=None``): the CLIP image tower
      as an ordinary backbone under the same FPN, without its embedding head; no text.

    Args:
        clip: ``dict(model_name=..., pretrained=...)`` for
            :func:`~densevl.models.clip.create_clip` (``'RN50-quickgelu'``, ``'RN101-quickgelu'``,
            ``'ViT-B-16-quickgelu'`` for OpenAI's weights, or a densevl zoo name). An open_clip
            name's weights load in :meth:`init_weights` (which the runner calls before
            training), so building the model to load a checkpoint downloads nothing; a zoo
            name's small local weights load at once.
        neck: mmseg neck config (``FPN``); ``in_channels`` is filled in from the backbone levels
            plus the fused channels.
        decode_head: ``FPNHead`` (closed set) or ``TextCosineFPNHead`` (any vocabulary; its
            ``embed_dims`` is filled in).
        class_names: default vocabulary: a list (synonyms joined by ``;``, inference only), a
            names file, or a dataset type (``'ADE20KDataset'``: its classes). None: set later
            (``tools/test.py`` sets the test dataset's classes).
        train_class_names: vocabulary of the training labels when it differs from
            ``class_names`` (vocabulary-agnostic training on seen classes); default
            ``class_names``.
        use_context: the DenseCLIP parts (text, context decoder, score map); off: the baseline.
        vocabulary_agnostic: fuse a K-independent summary of the score map (see the core).
        input_resolution: DenseCLIP's ``input_resolution``: the image tower's positional grid is
            resized bilinearly to ``input_resolution / stride`` when CLIP's weights are loaded
            (512 -> 16x16 for the ResNets, 640 -> 40x40 for ViT-B/16); None keeps CLIP's grid.
        vit: :class:`CLIPViTFeaturePyramid` options (``norm``, ``drop_path_rate``,
            ``drop_path_mode``, ``double_class_embedding``, ``feature_indices``).
        num_context, name_length: learned context vectors and name-slot tokens of the text.
        context_decoder: :class:`ContextDecoder` options (``width``, ``num_heads``, ``layers``,
            ``dropout``).
        score_concat_index: backbone level the score map joins; default the level of the dense
            embeddings' stride.
        gamma_init, agnostic_temperature: see :class:`DenseCLIPCore`.
        tau: the identity head's temperature (its logits are ``score_map / tau``).
        identity_loss: loss config of the identity auxiliary head, or None.
        auxiliary_head: optional mmseg auxiliary head(s) on the FPN outputs.
        clip_ensemble: vocabulary-agnostic only: :class:`FrozenCLIPEnsemble` options
            (``mode``, ``templates``, ``logit_scale``, ``seen_weight``, ``unseen_weight``); the
            frozen CLIP is ``clip``'s model with its original weights, which checkpoints do not
            hold (they come from ``clip.pretrained``).
        with_seg_logits: also attach ``seg_logits`` (logits ``(K, H, W)`` at the original size,
            by mmseg's own inference) to each prediction, as mmseg's test-time augmentation
            needs; off, predictions hold ``pred_sem_seg`` only.
        train_cfg, test_cfg: mmseg's; ``test_cfg=dict(mode='slide', crop_size=..., stride=...)``
            or ``dict(mode='whole')``.
        data_preprocessor, init_cfg: mmengine's.
    """

    #: ``tools/test.py --tta`` may wrap it in mmseg's SegTTAModel (it sets ``with_seg_logits``).
    supports_tta = True

    def __init__(self, *, clip: dict, neck: OptConfigType, decode_head: ConfigType,
                 class_names: str | Sequence[str] | None = None,
                 train_class_names: str | Sequence[str] | None = None,
                 use_context: bool = True, vocabulary_agnostic: bool = False,
                 input_resolution: int | None = None, vit: dict | None = None,
                 num_context: int = 8, name_length: int = 5,
                 context_decoder: dict | None = None, score_concat_index: int | None = None,
                 gamma_init: float = 1e-4, agnostic_temperature: float = 0.07,
                 tau: float = 0.07, identity_loss: OptConfigType = None,
                 clip_ensemble: dict | None = None, with_seg_logits: bool = False,
                 auxiliary_head: OptConfigType = None, train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None, data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        # EncoderDecoder's own __init__ builds a registered backbone; here the core is the
        # backbone, so only its head-building helpers are reused.
        BaseSegmentor.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        head_cfg = ConfigDict(decode_head)
        head_type = head_cfg['type']
        head_cls = head_type if isinstance(head_type, type) else SEG_MODELS.get(head_type)
        takes_text = bool(getattr(head_cls, 'takes_text', False))
        if not use_context and (vocabulary_agnostic or identity_loss or takes_text):
            raise ValueError('use_context=False is the CLIP-FPN baseline: it has no text and no '
                             'score map, so vocabulary_agnostic, identity_loss and a text head '
                             f'({head_type}) do not apply')
        if clip_ensemble is not None and not vocabulary_agnostic:
            raise ValueError('clip_ensemble weighs CLIP more for names outside the training '
                             'vocabulary; only the vocabulary-agnostic variant takes such names '
                             '(vocabulary_agnostic=True)')
        if vocabulary_agnostic and not takes_text:
            raise ValueError(f'the vocabulary-agnostic variant classifies pixels against the text '
                             f'embeddings; {head_type} has a fixed num_classes classifier: use '
                             'decode_head=dict(type="TextCosineFPNHead", ...)')
        self._head_takes_text = takes_text
        self._class_names = resolve_class_names(class_names)
        self._train_class_names = resolve_class_names(train_class_names)

        # CLIP, with the positional grid DenseCLIP builds its backbones with.
        name, pretrained = clip['model_name'], clip.get('pretrained')
        check_activation(name, pretrained)
        eager = name in MODEL_ZOO
        bundle = create_clip(name, pretrained if eager else None)
        self._pending_clip = None if eager or pretrained is None else \
            dict(model_name=name, pretrained=pretrained)
        #: True while the CLIP towers hold random weights (an open_clip name before
        #: :meth:`load_clip_weights`, or no pretrained weights at all).
        self.clip_random_weights = bundle.random_weights
        #: The frozen CLIP of the inference ensemble (vocabulary-agnostic variant), with CLIP's
        #: original weights: copied now, else loaded from ``clip.pretrained`` when first needed
        #: (or copied by :meth:`load_clip_weights`).
        self.clip_ensemble = None
        if clip_ensemble is not None:
            self.clip_ensemble = FrozenCLIPEnsemble(model_name=name, pretrained=pretrained,
                                                    **clip_ensemble)
            if self._pending_clip is None:
                self.clip_ensemble.load_from(bundle.model)
        image_encoder, stride, levels = image_encoder_for(bundle.model.visual, vit, name)
        if input_resolution is not None:
            if input_resolution % stride:
                raise ValueError(f'input_resolution {input_resolution} is not a multiple of the '
                                 f'image tower\'s stride {stride}')
            set_position_grid(bundle.model.visual, input_resolution // stride)

        # The language-guided core, or the bare image encoder for the baseline.
        self.core: DenseCLIPCore | None = None
        if use_context:
            index = STRIDES.index(stride) if score_concat_index is None else score_concat_index
            train_queries = self._train_queries()
            if train_queries is None:   # filled in later; the count is the classifier's
                train_queries = [f'class {i}' for i in range(int(head_cfg['num_classes']))]
            text_encoder = ContextPromptTextEncoder(bundle.model, bundle.tokenizer,
                                                    num_context=num_context,
                                                    name_length=name_length)
            self.core = DenseCLIPCore(
                image_encoder, text_encoder, class_names=train_queries,
                context_decoder=ContextDecoder(image_encoder.embed_dim,
                                               **(context_decoder or {})),
                score_concat_index=index, gamma_init=gamma_init,
                vocabulary_agnostic=vocabulary_agnostic,
                agnostic_temperature=agnostic_temperature)
            levels[index] += self.core.fused_channels
            if takes_text:
                head_cfg.setdefault('embed_dims', image_encoder.embed_dim)
        else:
            drop_embedding_head(bundle.model.visual)
            self.backbone = image_encoder

        if neck is not None:
            neck = ConfigDict(neck)
            if neck.get('in_channels') is not None and list(neck.in_channels) != levels:
                raise ValueError(f'neck.in_channels={list(neck.in_channels)} but the backbone '
                                 f'gives {levels} (score channels included); leave it unset')
            neck.in_channels = levels
            self.neck = SEG_MODELS.build(neck)
        self._init_decode_head(head_cfg)
        self._init_auxiliary_head(auxiliary_head)
        self.identity_loss = SEG_MODELS.build(identity_loss) if identity_loss else None
        self.tau = tau
        self.with_seg_logits = bool(with_seg_logits)
        self.train_cfg = train_cfg
        self.test_cfg = ConfigDict(test_cfg or dict(mode='whole'))
        self._vocab_cache: dict[tuple[str, ...], SegmentorVocabulary] = {}
        self._active: SegmentorVocabulary | None = None
        for names in (self._class_names, self._train_class_names):
            if names is not None:
                self._check_vocabulary(self._vocabulary(names), training=False)

    # ----- vocabulary ------------------------------------------------------------------------

    @property
    def class_names(self) -> list[str] | None:
        """The default vocabulary (None until set)."""
        names = self._class_names or self._train_class_names
        return list(names) if names is not None else None

    @class_names.setter
    def class_names(self, names: str | Sequence[str] | None) -> None:
        names = resolve_class_names(names)
        if names is not None:
            self._check_vocabulary(self._vocabulary(names), training=False)
        self._class_names = names

    def _train_queries(self) -> list[str] | None:
        names = self._train_class_names or self._class_names
        if names is None:
            return None
        return [query for synonyms in parse_class_names(names) for query in synonyms]

    def _vocabulary(self, names: Sequence[str]) -> SegmentorVocabulary:
        key = tuple(names)
        if key not in self._vocab_cache:
            if self.core is None:    # the baseline's classes are labels, not texts
                synonyms = [[name] for name in names]
            else:
                synonyms = parse_class_names(names)
            queries = tuple(q for group in synonyms for q in group)
            index = torch.tensor([i for i, group in enumerate(synonyms) for _ in group])
            tokens = self.core.text_encoder.tokenize(queries) if self.core is not None else None
            if len(self._vocab_cache) >= 4:
                self._vocab_cache.clear()
            self._vocab_cache[key] = SegmentorVocabulary(key, queries, index, tokens)
        return self._vocab_cache[key]

    def _check_vocabulary(self, vocab: SegmentorVocabulary, *, training: bool) -> None:
        if self.core is None:
            if vocab.num_classes != self.decode_head.out_channels:
                raise ValueError(f'the CLIP-FPN baseline has {self.decode_head.out_channels} '
                                 f'fixed classes; got {vocab.num_classes} names')
        elif not self.core.vocabulary_agnostic and len(vocab.queries) != self.core.num_classes:
            k = self.core.num_classes
            raise ValueError(
                f'closed-set DenseCLIP fuses the score maps of its {k} training classes into the '
                f'FPN, so it segments exactly {k} texts, not {len(vocab.queries)}. Use the '
                'vocabulary-agnostic variant (vocabulary_agnostic=True with a TextCosineFPNHead; '
                'configs/denseclip/denseclip-agnostic_*.py) to segment any texts')
        elif not self._head_takes_text and vocab.num_classes != self.decode_head.out_channels:
            raise ValueError(f'{type(self.decode_head).__name__} has '
                             f'{self.decode_head.out_channels} outputs; got {vocab.num_classes} '
                             'classes')
        if training and vocab.has_synonyms:
            raise ValueError('the training vocabulary has synonyms (";"); train with one name '
                             'per class and use synonyms at inference')

    def _default_vocabulary(self, texts: Sequence[str] | None) -> SegmentorVocabulary:
        names = list(texts) if texts is not None else self.class_names
        if not names:
            raise ValueError('no vocabulary: pass texts=[...] or set model.class_names in the '
                             'config (a list, a names file or a dataset type)')
        vocab = self._vocabulary(names)
        self._check_vocabulary(vocab, training=False)
        return vocab

    @contextlib.contextmanager
    def _vocabulary_in_use(self, texts: Sequence[str] | None) -> Iterator[SegmentorVocabulary]:
        vocab = self._default_vocabulary(texts)
        previous = self._active, self.out_channels
        # EncoderDecoder's slide inference sizes its buffer by out_channels.
        self._active, self.out_channels = vocab, vocab.num_classes
        try:
            yield vocab
        finally:
            self._active, self.out_channels = previous

    # ----- forward ---------------------------------------------------------------------------

    @property
    def image_encoder(self) -> nn.Module:
        """The CLIP image encoder: ``CLIPDenseResNet`` or ``CLIPViTFeaturePyramid``."""
        return self.core.image_encoder if self.core is not None else self.backbone

    @property
    def clip_visual(self) -> nn.Module:
        """The open_clip image tower inside :attr:`image_encoder`."""
        encoder = self.image_encoder
        return encoder.visual if isinstance(encoder, CLIPDenseResNet) else encoder.encoder.visual

    def _decode_inputs(self, inputs: Tensor, vocab: SegmentorVocabulary
                       ) -> tuple[list[Tensor], list[Tensor], Tensor | None]:
        """The decode head's inputs, the FPN outputs and the score map ``(B, Q, h, w)``."""
        score_map = text = None
        if self.core is None:
            encoder = self.backbone
            levels = encoder.stages(inputs) if isinstance(encoder, CLIPDenseResNet) \
                else encoder(inputs).features
        else:
            core = self.core
            out = core.encode_image(inputs)
            text = core.encode_text(out.global_embedding, out.dense, vocab.tokens)
            score_map = batched_score_map(out.dense, text, core.score_scale)
            levels = core.fuse(out.features, score_map, text)
        if self.with_neck:
            levels = list(self.neck(levels))
        head_inputs = [text, *levels] if self._head_takes_text else levels
        return head_inputs, levels, score_map

    def _query_logits(self, inputs: Tensor, vocab: SegmentorVocabulary) -> Tensor:
        """The head's logits per query, at its own stride (with the frozen CLIP's scores
        ensembled in when ``clip_ensemble`` is on).

        Shapes:
            inputs: ``(B, 3, H, W)``; returns ``(B, Q, H / 4, W / 4)``.
        """
        logits = self.decode_head.forward(self._decode_inputs(inputs, vocab)[0])
        if self.clip_ensemble is not None:
            logits = self.clip_ensemble(inputs, logits, vocab.queries,
                                        seen=set(self._train_queries() or ()))
        return logits

    def _query_scores(self, inputs: Tensor, vocab: SegmentorVocabulary,
                      region: tuple[int, int, int, int] | None = None) -> SlideScores:
        """Query logits over ``inputs`` by ``test_cfg.mode``: mmseg's sliding windows or the
        whole input, kept at the head's resolution; ``region`` crops the averages (padding)."""
        fn = lambda x: self._query_logits(x, vocab)
        if self.test_cfg.mode == 'slide':
            return slide_windows(fn, inputs, crop=tuple(self.test_cfg.crop_size),
                                 stride=tuple(self.test_cfg.stride), patch_size=1, region=region)
        if self.test_cfg.mode != 'whole':
            raise ValueError(f"test_cfg.mode must be 'slide' or 'whole', got "
                             f'{self.test_cfg.mode!r}')
        return whole_image(fn, inputs, region)

    @staticmethod
    def _pool(logits: Tensor, vocab: SegmentorVocabulary) -> Tensor:
        return pool_query_probs(logits, vocab.query_to_class) if vocab.has_synonyms else logits

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:
        """FPN outputs for the vocabulary in use. Shapes: strides 4-32 of ``(B, 3, H, W)``."""
        return self._decode_inputs(inputs, self._active or self._default_vocabulary(None))[1]

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """Class logits ``(B, K, H, W)`` at the input size, for the vocabulary in use (what
        mmseg's slide / whole inference asks of a window or batch)."""
        vocab = self._active or self._default_vocabulary(None)
        logits = resize(self._query_logits(inputs, vocab), size=inputs.shape[-2:],
                        mode='bilinear', align_corners=self.align_corners)
        return self._pool(logits, vocab)

    def _forward(self, inputs: Tensor, data_samples: SampleList | None = None) -> Tensor:
        vocab = self._active or self._default_vocabulary(None)
        return self._pool(self.decode_head.forward(self._decode_inputs(inputs, vocab)[0]), vocab)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Decode-head loss, identity-head loss on ``score_map / tau``, optional auxiliary head."""
        names = self._train_class_names or self._class_names
        if names is None:
            if self.core is not None:
                raise ValueError('DenseCLIP needs its class names to train: set '
                                 'model.class_names (a list, a names file or a dataset type)')
            names = [str(i) for i in range(self.decode_head.out_channels)]
        vocab = self._vocabulary(names)
        self._check_vocabulary(vocab, training=True)
        head_inputs, levels, score_map = self._decode_inputs(inputs, vocab)
        losses = self._decode_head_forward_train(head_inputs, data_samples)
        if self.identity_loss is not None:
            losses.update(add_prefix(self._identity_losses(score_map, data_samples),
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

    def predict(self, inputs: Tensor, data_samples: SampleList | None = None,
                texts: Sequence[str] | None = None) -> SampleList:
        """mmseg prediction (``pred_sem_seg``; ``seg_logits`` with ``with_seg_logits``) for
        ``texts`` (default :attr:`class_names`), by ``test_cfg.mode`` slide or whole inference.

        The labels are those of mmseg's inference and postprocessing (padding cropped, flips
        undone, bilinear resize to ``ori_shape``, argmax), computed a chunk of queries at a
        time from the head's low-resolution logits. Synonyms (``;``) are pooled after the last
        resize (mmseg's path, ``with_seg_logits``, pools them at the input size).
        """
        with self._vocabulary_in_use(texts) as vocab:
            if vocab.num_classes == 1:
                # mmseg reads one output channel as binary segmentation with a threshold
                raise ValueError('predict() needs at least two classes; segment() takes one '
                                 '(with prob_threshold)')
            if self.with_seg_logits:
                return super().predict(inputs, data_samples)
            if data_samples is None:
                data_samples = [SegDataSample(metainfo=dict(ori_shape=inputs.shape[-2:]))
                                for _ in range(inputs.shape[0])]
            for image, sample in zip(inputs, data_samples):
                sample.set_data(dict(pred_sem_seg=PixelData(
                    data=self._predict_labels(image[None], sample.metainfo, vocab))))
        return data_samples

    def _predict_labels(self, image: Tensor, meta: dict, vocab: SegmentorVocabulary) -> Tensor:
        """Shapes: image ``(1, 3, H, W)``; returns ``(1, *ori_shape)`` int64."""
        left, right, top, bottom = meta.get('img_padding_size',
                                            meta.get('padding_size', (0, 0, 0, 0)))
        height, width = image.shape[-2:]
        region = (top, left, height - top - bottom, width - left - right)
        scores = self._query_scores(image, vocab, region)
        best, _ = best_queries(scores, logit_scale=1.0,
                               out_size=tuple(meta.get('ori_shape', scores.size))[:2])
        labels = vocab.query_to_class.to(best.device)[best]
        if meta.get('flip'):
            direction = meta.get('flip_direction')
            if direction not in ('horizontal', 'vertical'):
                raise ValueError(f'flip_direction {direction!r}: mmseg flips horizontal or '
                                 'vertical')
            labels = labels.flip(-1 if direction == 'horizontal' else -2)
        return labels

    @torch.no_grad()
    def segment(self, images: Tensor, texts: Sequence[str], *,
                out_size: tuple[int, int] | None = None, prob_threshold: float = 0.0,
                background_index: int = -1, return_probs: bool = True) -> list[Segmentation]:
        """Segment normalised images for ``texts`` (the inferencer's entry point).

        Each synonym gets its own softmax probability and a class the largest of its synonyms'
        (as for the training-free models). Without ``return_probs`` no ``(B, K, H, W)`` tensor
        is built.

        Args:
            images: ``(B, 3, H, W)`` normalised as the data preprocessor does.
            texts: one entry per class, synonyms joined by ``;``. The closed-set model takes as
                many as it was trained with; the vocabulary-agnostic one any number.
            out_size: size of the results (default the input's).
            prob_threshold: pixels whose best class probability is lower get
                ``background_index``.
            return_probs: also return the class probabilities ``(K, H, W)``.
        """
        with self._vocabulary_in_use(texts) as vocab:
            scores = self._query_scores(images, vocab)
            labels, probs = assign_labels(
                scores, vocab.query_to_class, logit_scale=1.0,
                out_size=out_size or tuple(images.shape[-2:]), prob_threshold=prob_threshold,
                background_index=background_index, return_probs=return_probs)
        if probs is None:
            return [Segmentation(labels=lab, class_probs=None) for lab in labels]
        return [Segmentation(labels=lab, class_probs=p) for lab, p in zip(labels, probs)]

    def init_weights(self) -> None:
        """mmengine's initialisation of the neck and heads, then :meth:`load_clip_weights`."""
        first = not self.is_init
        super().init_weights()
        if first:
            self.load_clip_weights()

    def load_clip_weights(self) -> bool:
        """Load the pretrained CLIP weights of an open_clip model (``clip.pretrained``) into the
        image tower and text encoder, the positional grid resized as DenseCLIP resizes it.

        Returns:
            whether weights were loaded (False: none pending, a zoo model's are loaded at build).
        """
        if not self._pending_clip:
            return False
        source = create_clip(**self._pending_clip).model
        copy_clip_weights(source, self.clip_visual,
                          self.core.text_encoder if self.core is not None else None)
        if self.clip_ensemble is not None:
            self.clip_ensemble.load_from(source)
        self._pending_clip = None
        self.clip_random_weights = False
        return True
