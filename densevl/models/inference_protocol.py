"""How a segmentor is run on an image: one typed record per model, read by every caller.

A model owns its :class:`InferenceProtocol` (``segmenter.protocol``). Its default is recorded once:
for a CLIP name in the model zoo entry (:func:`default_protocol`; open_clip names get the
reference protocol of the training-free papers), for a config in the config (the model's keys and
the test pipeline). The inferencer resizes and normalises images by it, and every
``segment(images, texts, ...)`` takes its background policy from it unless told otherwise.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace

# OpenAI CLIP's pixel mean and std (RGB, 0-255), which every CLIP of the library was trained with.
OPENAI_MEAN = (122.771, 116.746, 104.094)
OPENAI_STD = (68.501, 66.632, 70.323)


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, int) or v <= 0 for v in pair):
        raise ValueError(f'slide {name} must be a positive int or an (h, w) pair of them, '
                         f'got {value!r}')
    return pair


@dataclass(frozen=True)
class SlideWindows:
    """Overlapping ``crop`` windows every ``stride`` pixels (``(h, w)`` each).

    ``crop=None`` is one window covering the whole input, kept at the input's resolution as
    mmseg's ``whole`` inference keeps it (its logits are resized to the input, padding cropped,
    then resized to the original size).
    """

    crop: tuple[int, int] | None
    stride: tuple[int, int] | None

    def __post_init__(self) -> None:
        if (self.crop is None) != (self.stride is None):
            raise ValueError('give both crop and stride, or neither (one whole-input window)')
        if self.crop is not None:
            object.__setattr__(self, 'crop', _pair(self.crop, 'crop'))
            object.__setattr__(self, 'stride', _pair(self.stride, 'stride'))

    @classmethod
    def whole_input(cls) -> SlideWindows:
        return cls(None, None)

    @classmethod
    def from_config(cls, value: SlideWindows | Mapping | None) -> SlideWindows | None:
        """From ``dict(crop=224, stride=112)`` (ints or ``(h, w)`` pairs), an mmseg ``test_cfg``
        (``dict(mode='slide', crop_size=..., stride=...)`` or ``dict(mode='whole')``), or None
        (no windows: the score map of the whole image is upsampled once to the output)."""
        if value is None or isinstance(value, SlideWindows):
            return value
        value = dict(value)
        mode = value.pop('mode', None)
        if mode == 'whole':
            return cls.whole_input()
        if mode not in (None, 'slide'):
            raise ValueError(f"test_cfg.mode must be 'slide' or 'whole', got {mode!r}")
        crop = value.pop('crop', value.pop('crop_size', None))
        stride = value.pop('stride', None)
        if crop is None or stride is None:
            raise ValueError(f'slide windows need crop and stride, e.g. dict(crop=224, '
                             f'stride=112); got {value!r}')
        return cls(crop, stride)


@dataclass(frozen=True)
class InferenceProtocol:
    """How a segmentor is run: input size, windows, dense mode, text, normalisation, background.

    Attributes:
        short_side: images are resized so their short side has this length first (None: as
            given).
        slide: sliding windows, or None for one whole-image forward upsampled once.
        logit_scale: temperature of the scores before the softmax over the queries.
        mode: dense last-block mode of a training-free CLIP (``naclip``, ``sclip``, ...); None for
            models without one.
        templates: prompt templates of the text embeddings (a set name or the templates); None
            for models with a learned prompt.
        mean, std: pixel normalisation (RGB, 0-255).
        prob_threshold: pixels whose best class probability is lower get ``background_index``.
        background_index: the label of those pixels: -1 for "none of these", or the index of a
            named background class.
    """

    short_side: int | None = 336
    slide: SlideWindows | None = SlideWindows(224, 112)
    logit_scale: float = 40.0
    mode: str | None = 'naclip'
    templates: str | tuple[str, ...] | None = 'imagenet80'
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    prob_threshold: float = 0.0
    background_index: int = -1

    def __post_init__(self) -> None:
        object.__setattr__(self, 'slide', SlideWindows.from_config(self.slide))
        if self.templates is not None and not isinstance(self.templates, str):
            object.__setattr__(self, 'templates', tuple(self.templates))
        object.__setattr__(self, 'mean', tuple(float(v) for v in self.mean))
        object.__setattr__(self, 'std', tuple(float(v) for v in self.std))
        if self.short_side is not None and self.short_side < 1:
            raise ValueError(f'short_side must be a positive int or None, got {self.short_side}')
        if not 0.0 <= self.prob_threshold <= 1.0:
            raise ValueError(f'prob_threshold is a probability, in [0, 1]; got '
                             f'{self.prob_threshold}')

    def updated(self, **changes) -> InferenceProtocol:
        """A copy with ``changes`` (protocol fields, e.g. ``mode='sclip'``, ``slide=None``)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f'unknown inference protocol field(s) {unknown}; the fields are '
                            f'{sorted(known)}')
        return replace(self, **changes)

    def background(self, prob_threshold: float | None = None,
                   background_index: int | None = None) -> dict:
        """The background policy of one call: the given values, else the protocol's."""
        return dict(
            prob_threshold=self.prob_threshold if prob_threshold is None else prob_threshold,
            background_index=self.background_index if background_index is None
            else background_index)


#: The training-free references' protocol (SCLIP, ClearCLIP, NACLIP): short side 336, 224/112
#: sliding windows, logit scale 40, the 80 ImageNet templates; NACLIP, the best on their tables.
REFERENCE_PROTOCOL = InferenceProtocol()


def preprocessor_normalisation(preprocessor) -> dict:
    """``dict(mean=..., std=...)`` of an mmengine data preprocessor that normalises (its
    ``mean``/``std`` buffers), else ``{}`` (the protocol's defaults)."""
    mean, std = getattr(preprocessor, 'mean', None), getattr(preprocessor, 'std', None)
    if mean is None or std is None:
        return {}
    return dict(mean=mean.flatten().tolist(), std=std.flatten().tolist())


def default_protocol(model_name: str) -> InferenceProtocol:
    """The protocol recorded for a CLIP name: its model zoo entry's, else the reference one."""
    from .clip.model_zoo import MODEL_ZOO

    entry = MODEL_ZOO.get(model_name)
    return entry.protocol if entry is not None and entry.protocol is not None \
        else REFERENCE_PROTOCOL
