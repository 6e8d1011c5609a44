"""ReCo's reference embeddings: retrieval + co-segmentation per concept, cached on disk.

A concept's reference is built once per (concept, retrieval index, encoders, options) and kept in
memory and in one small file, written atomically; a file that cannot be read or does not hold what
its name promises is rebuilt, never used. The context categories are built first, progressively
(each one eliminates the contexts before it), and a target concept eliminates all of them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import chain
from pathlib import Path

import torch
from torch import Tensor, nn

from ..text import TextEmbedder
from ..text.text_embedder import weights_fingerprint, write_atomic
from .coseg import GUIDANCE_TEMPERATURE, check_slicing, cosegment

logger = logging.getLogger(__name__)

FORMAT = 'densevl-reco-reference/1'
#: ImageNet's pixel mean and std (RGB, 0-255): ReCo normalises every image with them, for the
#: co-segmentation encoder and the dense CLIP alike.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
CONTEXT_CATEGORIES = ('tree', 'sky', 'building', 'road', 'person')
ALIASES = (('vegetation', 'tree'),)


class TooFewImagesError(ValueError):
    """The retrieval index gave a concept fewer than ``k`` images."""


@dataclass(frozen=True)
class ReCoSettings:
    """What decides a reference embedding besides the models and the index.

    Attributes:
        k: archive images retrieved and co-segmented per concept.
        context: context categories, eliminated in this order (empty: no elimination).
        aliases: concepts that take another's reference (``vegetation`` uses ``tree``).
        slicing: ``'paper'`` or ``'code'`` (see :mod:`densevl.models.reco.coseg`).
        language_guidance: weight patches by ``σ(T · cos(g, t))``.
        temperature: ``T``.
        image_size: archive images are resized (short side) and centre-cropped to it.
        mean, std: their normalisation (RGB, 0-255).
        allow_fewer: co-segment the images found when the index returns fewer than ``k`` (with a
            warning); False raises :class:`TooFewImagesError`.
    """

    k: int = 50
    context: tuple[str, ...] = CONTEXT_CATEGORIES
    aliases: tuple[tuple[str, str], ...] = ALIASES
    slicing: str = 'paper'
    language_guidance: bool = True
    temperature: float = GUIDANCE_TEMPERATURE
    image_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    allow_fewer: bool = False
    _alias: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_slicing(self.slicing)
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f'k must be a positive int, got {self.k!r}')
        object.__setattr__(self, 'context', tuple(self.context))
        object.__setattr__(self, 'aliases', tuple(tuple(a) for a in self.aliases))
        object.__setattr__(self, '_alias', dict(self.aliases))
        if len(set(self.context)) != len(self.context):
            raise ValueError(f'context categories repeat: {self.context}')

    def resolve(self, concept: str) -> str:
        return self._alias.get(concept, concept)

    def preceding(self, concept: str) -> tuple[str, ...]:
        """The context categories whose references eliminate context for ``concept``."""
        if concept in self.context:
            return self.context[:self.context.index(concept)]
        return self.context

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith('_')}


def default_cache_dir() -> Path:
    """``$DENSEVL_CACHE/reco``, or ``~/.cache/densevl/reco`` when the variable is unset."""
    root = os.environ.get('DENSEVL_CACHE')
    return (Path(root) if root else Path.home() / '.cache' / 'densevl').expanduser() / 'reco'


def load_archive_images(paths: Sequence[str], size: int, mean: Sequence[float],
                        std: Sequence[float]) -> Tensor:
    """Archive images as ReCo feeds them: short side resized to ``size``, centre crop, normalised.

    Shapes:
        returns ``(N, 3, size, size)`` float32.
    """
    from PIL import Image
    from torchvision.transforms import functional as TF

    mean01 = [m / 255 for m in mean]
    std01 = [s / 255 for s in std]
    out = []
    for path in paths:
        with Image.open(path) as image:
            image = TF.center_crop(TF.resize(image.convert('RGB'), size), size)
            out.append(TF.normalize(TF.to_tensor(image), mean01, std01))
    return torch.stack(out)


class ReferenceBuilder:
    """Reference embeddings of concepts from a retrieval index and two encoders.

    Args:
        index: a :class:`~densevl.models.reco.retrieval_index.RetrievalIndex` (``search``,
            ``paths``, ``fingerprint``, ``check_model``).
        retrieval_text: the index CLIP's text embedder (85 templates, ``'reco85'``).
        patch_encoder: the co-segmentation encoder (:class:`PatchTokenEncoder`).
        dense_encoder: the MaskCLIP dense CLIP encoder (``forward_dense``), e.g. RN50x16.
        guidance_text: the dense CLIP's text embedder (``'reco85'``).
        settings: :class:`ReCoSettings`.
        cache_dir: the disk cache; None for :func:`default_cache_dir`, False for memory only.
        batch_size: archive images per encoder forward.
        load_images: ``(paths, size, mean, std) -> (N, 3, size, size)``; default
            :func:`load_archive_images`.
    """

    def __init__(self, *, index, retrieval_text: TextEmbedder, patch_encoder: nn.Module,
                 dense_encoder: nn.Module, guidance_text: TextEmbedder,
                 settings: ReCoSettings = ReCoSettings(),
                 cache_dir: str | os.PathLike | bool | None = None, batch_size: int = 16,
                 load_images: Callable[..., Tensor] = load_archive_images) -> None:
        check_model = getattr(index, 'check_model', None)
        if check_model is not None:
            check_model(retrieval_text.model_id,
                        weights_fingerprint(chain(retrieval_text.clip_model.named_parameters(),
                                                  retrieval_text.clip_model.named_buffers())))
        self.index = index
        self.retrieval_text = retrieval_text
        self.patch_encoder = patch_encoder
        self.dense_encoder = dense_encoder
        self.guidance_text = guidance_text
        self.settings = settings
        self.batch_size = int(batch_size)
        self.load_images = load_images
        if cache_dir is False:
            self.cache_dir: Path | None = None
        else:
            self.cache_dir = default_cache_dir() if cache_dir in (None, True) else \
                Path(cache_dir).expanduser()
        self._memory: dict[str, Tensor] = {}
        self._key: str | None = None

    @property
    def key(self) -> str:
        """sha1 (hex) of everything a reference depends on besides its concept."""
        if self._key is None:
            dense_visual = getattr(self.dense_encoder, 'visual', self.dense_encoder)
            content = {
                'format': FORMAT, 'index': self.index.fingerprint,
                'retrieval_text': [self.retrieval_text.fingerprint,
                                   self.retrieval_text.templates_hash],
                'encoder': [getattr(self.patch_encoder, 'model_id', type(self.patch_encoder)
                                    .__name__), _module_fingerprint(self.patch_encoder)],
                'dense': [type(self.dense_encoder).__name__,
                          getattr(self.dense_encoder, 'mode', None),
                          weights_fingerprint(chain(dense_visual.named_parameters(),
                                                    dense_visual.named_buffers()))],
                'guidance_text': [self.guidance_text.fingerprint,
                                  self.guidance_text.templates_hash],
                'settings': self.settings.as_dict(),
            }
            blob = json.dumps(content, sort_keys=True, default=list).encode()
            self._key = hashlib.sha1(blob).hexdigest()
        return self._key

    def cache_file(self, concept: str) -> Path | None:
        """The file of ``concept``'s reference, or None without a disk cache."""
        if self.cache_dir is None:
            return None
        slug = re.sub(r'[^A-Za-z0-9._-]+', '_', concept).strip('._')[:40] or 'concept'
        digest = hashlib.sha1(concept.encode('utf-8')).hexdigest()[:12]
        return self.cache_dir / self.key[:16] / f'{slug}-{digest}.pt'

    def __call__(self, concepts: Sequence[str]) -> Tensor:
        """References of ``concepts`` (built on the spot when not cached).

        Shapes:
            returns ``(K, D)`` float32, unit norm, on the patch encoder's device.
        """
        return torch.stack([self.reference(c) for c in concepts])

    @torch.no_grad()
    def reference(self, concept: str) -> Tensor:
        """One concept's reference ``(D,)``; its context categories first when needed."""
        concept = self.settings.resolve(concept)
        if concept in self._memory:
            return self._memory[concept]
        context = [self.reference(c) for c in self.settings.preceding(concept)]
        embedding = self._read(concept)
        if embedding is None:
            embedding = self.build(concept, torch.stack(context) if context else None)
            self._write(concept, embedding)
        self._memory[concept] = embedding.to(_device(self.patch_encoder))
        return self._memory[concept]

    def retrieve(self, concept: str) -> list[str]:
        """The archive images of ``concept``: the top ``k`` by cosine with its text query."""
        k = self.settings.k
        query = self.retrieval_text([concept]).embeddings[:1].float()
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)   # fewer than k: said below
            _, ids = self.index.search(query, k)
        ids = ids[0].cpu()
        ids = ids[ids >= 0]
        if len(ids) < k:
            message = (f'the retrieval index returned {len(ids)} images for {concept!r}, fewer '
                       f'than k={k}')
            if len(ids) == 0 or not self.settings.allow_fewer:
                raise TooFewImagesError(f'{message}; use a larger index, a smaller k, or '
                                        'ReCoSettings(allow_fewer=True) to co-segment those found')
            warnings.warn(f'{message}; co-segmenting those', UserWarning, stacklevel=3)
        return self.index.paths(ids)

    @torch.no_grad()
    def build(self, concept: str, context: Tensor | None) -> Tensor:
        """Retrieve and co-segment ``concept`` (no cache). Shapes: context ``(M, D)``."""
        s = self.settings
        images = self.load_images(self.retrieve(concept), s.image_size, s.mean, s.std)
        feats, dense = [], []
        device = _device(self.patch_encoder)
        for batch in images.split(self.batch_size):
            batch = batch.to(device)
            feats.append(self.patch_encoder(batch).float())
            if s.language_guidance:
                dense.append(self.dense_encoder.forward_dense(
                    batch.to(_device(self.dense_encoder)), return_global=False).dense.float())
        text = None
        if s.language_guidance:
            text = self.guidance_text([concept]).embeddings[0].to(device)
        result = cosegment(torch.cat(feats), torch.cat(dense).to(device) if dense else None, text,
                           context, slicing=s.slicing, temperature=s.temperature)
        logger.info('ReCo reference of %r from %d images', concept, len(images))
        return result.reference.float()

    def _read(self, concept: str) -> Tensor | None:
        path = self.cache_file(concept)
        if path is None or not path.exists():
            return None
        try:
            data = torch.load(path, map_location='cpu', weights_only=True)
            problem = self._problem(data, concept)
        except Exception as err:  # any unreadable file is rebuilt, never fatal
            problem = f'{type(err).__name__}: {err}'
        if problem is None:
            return data['embedding']
        logger.warning('ignoring the corrupt ReCo reference cache %s (%s); rebuilding it', path,
                       problem)
        return None

    def _problem(self, data, concept: str) -> str | None:
        if not isinstance(data, dict) or data.get('format') != FORMAT:
            return 'not a ReCo reference file'
        if data.get('key') != self.key or data.get('concept') != concept:
            return 'written for another concept or other settings'
        emb = data.get('embedding')
        if not isinstance(emb, Tensor) or emb.dtype != torch.float32 or emb.ndim != 1:
            return 'no (D,) float32 embedding'
        if not bool(torch.isfinite(emb).all()) or abs(float(emb.norm()) - 1) > 1e-3:
            return 'an embedding that is not finite and unit-norm'
        return None

    def _write(self, concept: str, embedding: Tensor) -> None:
        path = self.cache_file(concept)
        if path is None:
            return
        record = {'format': FORMAT, 'key': self.key, 'concept': concept,
                  'embedding': embedding.detach().float().cpu()}
        try:
            write_atomic(path, lambda f: torch.save(record, f))
        except OSError as err:
            logger.warning('could not write the ReCo reference cache %s (%s); the reference '
                           'stays in memory only', path, err)


def _module_fingerprint(module: nn.Module) -> str:
    fingerprint = getattr(module, 'fingerprint', None)
    if isinstance(fingerprint, str):
        return fingerprint
    return weights_fingerprint(chain(module.named_parameters(), module.named_buffers()))


def _device(module: nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device('cpu')
