"""What DenseCLIP and the CLIP-FPN baseline share as mmseg segmentors: a CLIP image tower under an
FPN, a vocabulary at call time, lean prediction through the :class:`DensePredictor`, and CLIP's
pretrained weights loaded when training starts."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from functools import partial

import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor, EncoderDecoder
from mmseg.models.utils import resize
from mmseg.structures import SegDataSample
from mmseg.utils import OptConfigType, SampleList
from torch import Tensor, nn

# Runner checkpoints (iter_*.pth) of these models must load wherever they are built, e.g. in
# OpenVocabSegInferencer(config, weights=...), under torch's weights-only torch.load.
from ... import engine  # noqa: F401
from ...registry import SEG_MODELS
from ..clip import MODEL_ZOO, CLIPBundle, check_activation, create_clip
from ..denseclip.checkpoint import copy_clip_weights
from ..inference_protocol import InferenceProtocol, SlideWindows, preprocessor_normalisation
from ..text import Vocabulary, resolve_class_names
from .dense_predictor import DensePredictor, Segmentation
from .mm_common import padding_of


class CLIPEncoderDecoder(EncoderDecoder):
    """An :class:`EncoderDecoder` whose backbone is a CLIP image tower (plus, in subclasses, text).

    Subclasses build their modules with :meth:`_init_clip` and :meth:`_init_neck_and_heads`,
    define :meth:`window_logits` (a window's logits for a vocabulary) and
    :meth:`check_vocabulary`; one with a text side loads CLIP's text tower too
    (:meth:`_load_clip`). Prediction places windows and resizes as :class:`EncoderDecoder`'s
    slide / whole inference does (``test_cfg``), but the labels come from the low-resolution
    logits through the fused upsample-argmax, so no ``(K, H, W)`` tensor is built unless
    ``with_seg_logits`` asks for mmseg's own inference.
    """

    #: ``tools/test.py --tta`` may wrap it in mmseg's SegTTAModel (it sets ``with_seg_logits``).
    supports_tta = True

    def _init_clip(self, clip: dict, data_preprocessor: OptConfigType,
                   init_cfg: OptConfigType) -> CLIPBundle:
        """The CLIP, with weights now for a densevl zoo model, else loaded by :meth:`init_weights`
        (building the model to load a checkpoint downloads nothing)."""
        # EncoderDecoder's own __init__ builds a registered backbone; here CLIP is the backbone,
        # so only its head-building helpers are reused.
        BaseSegmentor.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        name, pretrained = clip['model_name'], clip.get('pretrained')
        check_activation(name, pretrained)
        eager = name in MODEL_ZOO
        bundle = create_clip(name, pretrained if eager else None)
        self._pending_clip = None if eager or pretrained is None else \
            dict(model_name=name, pretrained=pretrained)
        #: True while the CLIP towers hold random weights (an open_clip name before
        #: :meth:`load_clip_weights`, or no pretrained weights at all).
        self.clip_random_weights = bundle.random_weights
        return bundle

    def _init_neck_and_heads(self, levels: list[int], *, neck: OptConfigType,
                             decode_head: dict, auxiliary_head: OptConfigType,
                             class_names, with_seg_logits: bool, train_cfg: OptConfigType,
                             test_cfg: OptConfigType) -> None:
        if neck is not None:
            neck = ConfigDict(neck)
            if neck.get('in_channels') is not None and list(neck.in_channels) != levels:
                raise ValueError(f'neck.in_channels={list(neck.in_channels)} but the backbone '
                                 f'gives {levels} (score channels included); leave it unset')
            neck.in_channels = levels
            self.neck = SEG_MODELS.build(neck)
        self._init_decode_head(decode_head)
        self._init_auxiliary_head(auxiliary_head)
        self.with_seg_logits = bool(with_seg_logits)
        self.train_cfg = train_cfg
        self.test_cfg = ConfigDict(test_cfg or dict(mode='whole'))
        self._class_names = None
        self.class_names = class_names
        self._active: Vocabulary | None = None

    # ----- what a subclass defines -------------------------------------------------------------

    @property
    def image_encoder(self) -> nn.Module:
        """The CLIP image encoder: ``CLIPDenseResNet`` or ``CLIPViTFeaturePyramid``."""
        raise NotImplementedError

    def window_logits(self, images: Tensor, vocabulary: Vocabulary) -> Tensor:
        """The decode head's logits of a window, at the head's stride, indexed by
        :meth:`logits_vocabulary`. Shapes: ``(B, 3, H, W)`` -> ``(B, Q, H / 4, W / 4)``."""
        raise NotImplementedError

    def logits_vocabulary(self, vocabulary: Vocabulary) -> Vocabulary:
        """The vocabulary :meth:`window_logits` is indexed by (per query, or per class)."""
        return vocabulary

    def check_vocabulary(self, vocabulary: Vocabulary, *, training: bool) -> None:
        """Raise if the model cannot segment ``vocabulary``."""
        if training and vocabulary.has_synonyms:
            raise ValueError('the training vocabulary has synonyms (";"); train with one name '
                             'per class and use synonyms at inference')

    # ----- vocabulary --------------------------------------------------------------------------

    @property
    def class_names(self) -> list[str] | None:
        """The default vocabulary (None until set; ``tools/test.py`` sets the dataset's)."""
        return list(self._class_names) if self._class_names is not None else None

    @class_names.setter
    def class_names(self, names) -> None:
        names = resolve_class_names(names)
        if names is not None:
            self.check_vocabulary(Vocabulary.parse(names), training=False)
        self._class_names = names

    def vocabulary(self, texts: Sequence[str] | None = None) -> Vocabulary:
        """The checked vocabulary of ``texts`` (default :attr:`class_names`)."""
        names = list(texts) if texts is not None else self.class_names
        if not names:
            raise ValueError('no vocabulary: pass texts=[...] or set model.class_names in the '
                             'config (a list, a names file or a dataset type)')
        vocab = Vocabulary.parse(names)
        self.check_vocabulary(vocab, training=False)
        return vocab

    @contextlib.contextmanager
    def _vocabulary_in_use(self, texts: Sequence[str] | None) -> Iterator[Vocabulary]:
        """mmseg's inference calls :meth:`encode_decode` with no vocabulary argument, and sizes
        its buffers by ``out_channels``: both follow this call's vocabulary."""
        vocab = self.vocabulary(texts)
        previous = self._active, self.out_channels
        self._active, self.out_channels = vocab, vocab.num_classes
        try:
            yield vocab
        finally:
            self._active, self.out_channels = previous

    # ----- mmseg's forward ---------------------------------------------------------------------

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """Class logits ``(B, K, H, W)`` at the input size, for the vocabulary in use (what
        mmseg's slide / whole inference asks of a window or batch)."""
        vocab = self._active or self.vocabulary()
        logits = resize(self.window_logits(inputs, vocab), size=inputs.shape[-2:],
                        mode='bilinear', align_corners=self.align_corners)
        return self.logits_vocabulary(vocab).pool_synonyms(logits)

    def _forward(self, inputs: Tensor, data_samples: SampleList | None = None) -> Tensor:
        vocab = self._active or self.vocabulary()
        return self.logits_vocabulary(vocab).pool_synonyms(self.window_logits(inputs, vocab))

    # ----- prediction --------------------------------------------------------------------------

    @property
    def predictor(self) -> DensePredictor:
        """The dense predictor of ``test_cfg`` (mmseg's slide or whole inference)."""
        return DensePredictor(SlideWindows.from_config(self.test_cfg))

    @property
    def protocol(self) -> InferenceProtocol:
        """How the model is run: the config's windows and normalisation (the short side is the
        test pipeline's); the head's logits are scaled already."""
        return InferenceProtocol(short_side=None, slide=self.predictor.slide, logit_scale=1.0,
                                 mode=None, templates=None,
                                 **preprocessor_normalisation(self.data_preprocessor))

    @property
    def random_weights(self) -> bool:
        return self.clip_random_weights

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
            window_logits = partial(self.window_logits, vocabulary=vocab)
            for image, sample in zip(inputs, data_samples):
                meta = sample.metainfo
                left, right, top, bottom = padding_of(meta)
                height, width = image.shape[-2:]
                region = (top, left, height - top - bottom, width - left - right)
                result = self.predictor.predict(
                    image[None], window_logits, self.logits_vocabulary(vocab),
                    out_size=tuple(meta.get('ori_shape', region[2:]))[:2], region=region,
                    flip=(meta.get('flip_direction') or 'unknown') if meta.get('flip')
                    else None)[0]
                sample.set_data(dict(pred_sem_seg=PixelData(data=result.labels[None])))
        return data_samples

    @torch.no_grad()
    def segment(self, images: Tensor, texts: Sequence[str], *,
                out_size: tuple[int, int] | None = None, prob_threshold: float | None = None,
                background_index: int | None = None,
                return_probs: bool = True) -> list[Segmentation]:
        """See :meth:`OpenVocabSegmenter.segment`: each synonym gets its own softmax
        probability and a class the largest of its synonyms'."""
        with self._vocabulary_in_use(texts) as vocab:
            return self.predictor.predict(
                images, partial(self.window_logits, vocabulary=vocab),
                self.logits_vocabulary(vocab), out_size=out_size, return_probs=return_probs,
                **self.protocol.background(prob_threshold, background_index))

    # ----- CLIP weights ------------------------------------------------------------------------

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
        self._load_clip(source)
        self._pending_clip = None
        self.clip_random_weights = False
        return True

    def _load_clip(self, source: nn.Module) -> None:
        """Copy the pretrained CLIP ``source`` into the model."""
        copy_clip_weights(source, self.image_encoder)
