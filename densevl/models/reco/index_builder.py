"""Build a ReCo retrieval index: CLIP image embeddings of a collection, in shards, resumable.

The images (a folder, searched recursively, or a list file) are cut into shards of
``shard_size`` consecutive images. Each process (one, or each rank of a torchrun job) embeds
the unfinished shards given to it and writes each one as ``shards/shard-NNNNN.npy`` through a
temporary file renamed once complete, so that after an interruption a rerun keeps every
finished shard and discards what was half-written. When all shards exist, rank 0 puts them
into one FAISS index and writes ``index.faiss``, then ``manifest.json`` (both atomically; the
manifest last). ``shards/plan.json`` records what the shards are embeddings of (model,
weights, preprocessing, file list, shard size): a rerun with anything else is refused rather
than mixed in.

Images are decoded and preprocessed by DataLoader workers while the model runs on the previous
batches: resize of the short side to the model's input size (bicubic), centre crop, the model's
mean and std; ``encode_image``, L2-normalised, float32.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from mmengine.dist import barrier, broadcast_object_list, get_dist_info
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..clip import CLIPBundle
from ..text.text_embedder import write_atomic
from .retrieval_index import (
    FORMAT,
    INDEX_FILE,
    MANIFEST,
    SHARDS_DIR,
    RetrievalIndex,
    clip_fingerprint,
    import_faiss,
)

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff', '.ppm')
PLAN = 'plan.json'


def list_images(source: str | os.PathLike) -> tuple[Path, list[str]]:
    """The images of a collection: ``(root, files)``, ``files`` relative to ``root``.

    Args:
        source: a folder (every file with an image extension below it, in sorted order), or a
            text file of image paths, one a line (relative ones are relative to the list
            file's folder; blank lines and lines starting with ``#`` are skipped).
    """
    source = Path(source)
    if source.is_dir():
        root = source.resolve()
        files = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
            rel = os.path.relpath(folder, root)
            files += [os.path.normpath(os.path.join(rel, n)) for n in names
                      if n.lower().endswith(IMAGE_EXTENSIONS)]
        return root, sorted(files)
    if source.is_file():
        lines = (line.strip() for line in source.read_text().splitlines())
        return source.resolve().parent, [line for line in lines if line and line[0] != '#']
    raise FileNotFoundError(f'image collection {source} does not exist (give a folder of images '
                            'or a text file listing them)')


def clip_preprocessing(visual: torch.nn.Module) -> dict:
    """How an open_clip image tower's own inputs are made, as recorded in a manifest."""
    size = visual.image_size
    size = [int(size), int(size)] if isinstance(size, int) else [int(v) for v in size]
    mean = getattr(visual, 'image_mean', None) or open_clip.OPENAI_DATASET_MEAN
    std = getattr(visual, 'image_std', None) or open_clip.OPENAI_DATASET_STD
    return dict(resize='short side to the crop size', interpolation='bicubic', center_crop=size,
                mean=[float(v) for v in mean], std=[float(v) for v in std], pixel_range=[0, 1],
                embedding='encode_image, L2-normalised, float32')


def preprocessing_transform(preprocessing: dict):
    """PIL image -> ``(3, H, W)`` float tensor, as ``preprocessing`` says."""
    return open_clip.image_transform(tuple(preprocessing['center_crop']), is_train=False,
                                     mean=tuple(preprocessing['mean']),
                                     std=tuple(preprocessing['std']), resize_mode='shortest',
                                     interpolation=preprocessing['interpolation'])


class ImageListDataset(Dataset):
    """``(global index, preprocessed image)`` of the ``indices`` of ``files`` under ``root``."""

    def __init__(self, root: Path, files: list[str], indices: list[int], transform) -> None:
        self.root, self.files, self.indices, self.transform = root, files, indices, transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[int, torch.Tensor]:
        index = self.indices[item]
        path = os.path.join(self.root, self.files[index])
        try:
            with Image.open(path) as image:
                return index, self.transform(image)
        except Exception as err:  # noqa: BLE001 - any decoding failure names its file
            raise RuntimeError(f'cannot read image {path}: {type(err).__name__}: {err}') from err


def _write_shard(path: Path, embeddings: np.ndarray) -> None:
    write_atomic(path, lambda f: np.save(f, embeddings))


class RetrievalIndexBuilder:
    """Embeds a collection with a CLIP image tower and writes a :class:`RetrievalIndex`.

    Args:
        clip: the CLIP (:func:`~densevl.models.clip.create_clip`); moved to ``device``.
        batch_size: images per forward pass.
        num_workers: DataLoader processes decoding images while the model runs.
        prefetch_factor: batches each worker prepares ahead.
        shard_size: images per shard (the unit of resumption and of work between ranks).
        index_factory: FAISS factory string: ``'Flat'`` (exact inner product, the default),
            ``'IVF4096,Flat'``, ``'IVF4096,PQ64'``, ``'HNSW32,Flat'``, ...
        search_params: FAISS search parameters stored with the index, e.g. ``'nprobe=64'``
            (IVF) or ``'efSearch=128'`` (HNSW).
        train_size: vectors (a seeded random sample) that train an index that needs training.
        keep_shards: keep ``shards/`` once the index is written.
        device: where the model runs (default: CUDA when available).
        progress: show a progress bar (rank 0).
    """

    def __init__(self, clip: CLIPBundle, *, batch_size: int = 64, num_workers: int = 4,
                 prefetch_factor: int = 4, shard_size: int = 10_000, index_factory: str = 'Flat',
                 search_params: str = '', train_size: int = 262_144, keep_shards: bool = False,
                 device: str | torch.device | None = None, progress: bool = True) -> None:
        for name, value in dict(batch_size=batch_size, shard_size=shard_size,
                                prefetch_factor=prefetch_factor, train_size=train_size).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        self.clip = clip
        self.model = clip.model.to(self.device).eval()
        self.weights_fingerprint = clip_fingerprint(self.model)
        self.preprocessing = clip_preprocessing(self.model.visual)
        self.dim = int(getattr(self.model.visual, 'output_dim', 0) or self._probe_dim())
        self.batch_size, self.num_workers = batch_size, num_workers
        self.prefetch_factor, self.shard_size = prefetch_factor, shard_size
        self.index_factory, self.search_params = index_factory, search_params
        self.train_size, self.keep_shards, self.progress = train_size, keep_shards, progress
        self._new_index()  # a bad factory string or search parameter fails now, not at the end

    def build(self, source: str | os.PathLike, out_dir: str | os.PathLike, *,
              restart: bool = False, overwrite: bool = False) -> RetrievalIndex | None:
        """Embed ``source`` (see :func:`list_images`) into the index folder ``out_dir``.

        An unfinished build of the same plan in ``out_dir`` is resumed. Under torchrun, every
        rank calls this; each embeds its share of the unfinished shards.

        Args:
            restart: discard the shards of an unfinished build first.
            overwrite: replace a finished index in ``out_dir`` (else refused).

        Returns:
            The index on rank 0; None on the other ranks.
        """
        out = Path(out_dir)
        rank, world = get_dist_info()
        state = [None]
        if rank == 0:
            try:
                state = [self._prepare(source, out, restart=restart, overwrite=overwrite)]
            except Exception as err:  # noqa: BLE001 - every rank raises it, none waits forever
                state = [err]
        if world > 1:
            broadcast_object_list(state, src=0)
        if isinstance(state[0], Exception):
            raise state[0]
        plan = state[0]
        self._extract(plan, plan['todo'][rank::world], out / SHARDS_DIR, rank == 0)
        if world > 1:
            barrier()
        return self._assemble(plan, out) if rank == 0 else None

    # ---- steps ---------------------------------------------------------------------------

    def _prepare(self, source, out: Path, *, restart: bool, overwrite: bool) -> dict:
        """Check ``out``, list the images, write or check the plan; the shards still to do."""
        if (out / MANIFEST).exists():
            if not overwrite:
                raise FileExistsError(f'{out} already holds a finished retrieval index; pass '
                                      '--overwrite (overwrite=True) to rebuild it')
            for name in (MANIFEST, INDEX_FILE):
                (out / name).unlink(missing_ok=True)
            restart = True
        root, files = list_images(source)
        if not files:
            raise ValueError(f'no images in {source} (looked for files ending in '
                             f'{", ".join(IMAGE_EXTENSIONS)}, case-insensitive)')
        plan = dict(format=FORMAT, model_id=self.clip.model_id,
                    weights_fingerprint=self.weights_fingerprint,
                    preprocessing=self.preprocessing, dim=self.dim, count=len(files),
                    files_sha1=hashlib.sha1('\n'.join(files).encode()).hexdigest(),
                    shard_size=self.shard_size)
        shards = out / SHARDS_DIR
        if restart and shards.exists():
            shutil.rmtree(shards)
        plan_file = shards / PLAN
        if plan_file.exists():
            old = json.loads(plan_file.read_text())
            changed = sorted(k for k in set(plan) | set(old) if plan.get(k) != old.get(k))
            if changed:
                raise RuntimeError(
                    f'{out} holds an unfinished index build that differs from this one in '
                    f'{", ".join(changed)} (it was built with {old.get("model_id")}, this is '
                    f'{plan["model_id"]}); rerun it as it was, or pass --restart '
                    '(restart=True) to discard its shards')
        else:
            write_atomic(plan_file, lambda f: f.write(json.dumps(plan, indent=1).encode()))
        for stale in shards.glob('.*.tmp'):
            print_log(f'discarding the half-written {stale.name}', logger='current')
            stale.unlink()
        num_shards = math.ceil(len(files) / self.shard_size)
        todo = [s for s in range(num_shards) if not self._shard_done(shards, s, len(files))]
        if len(todo) < num_shards:
            print_log(f'resuming: {num_shards - len(todo)} of {num_shards} shards already done',
                      logger='current')
        return dict(root=str(root), files=files, num_shards=num_shards, todo=todo)

    def _shard_rows(self, shard: int, count: int) -> range:
        return range(shard * self.shard_size, min((shard + 1) * self.shard_size, count))

    def _shard_done(self, shards: Path, shard: int, count: int) -> bool:
        path = shards / f'shard-{shard:05d}.npy'
        if not path.exists():
            return False
        try:
            array = np.load(path, mmap_mode='r')
            ok = array.dtype == np.float32 and array.shape == (
                len(self._shard_rows(shard, count)), self.dim)
        except (OSError, ValueError) as err:
            ok, array = False, err
        if not ok:
            print_log(f'discarding the unusable {path.name} ({getattr(array, "shape", array)})',
                      logger='current', level=logging.WARNING)
            path.unlink()
        return ok

    @torch.inference_mode()
    def _extract(self, plan: dict, shards_todo: list[int], shards: Path, show: bool) -> None:
        count = len(plan['files'])
        rows = [self._shard_rows(s, count) for s in shards_todo]
        indices = [i for r in rows for i in r]
        if not indices:
            return
        dataset = ImageListDataset(Path(plan['root']), plan['files'], indices,
                                   preprocessing_transform(self.preprocessing))
        workers = dict(num_workers=self.num_workers, prefetch_factor=self.prefetch_factor
                       ) if self.num_workers > 0 else dict(num_workers=0)
        loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False,
                            pin_memory=self.device.type == 'cuda', **workers)
        bar = ProgressBar(len(indices)) if show and self.progress else None
        pending = iter(zip(shards_todo, rows))
        shard, shard_rows = next(pending)
        buffer, filled = np.empty((len(shard_rows), self.dim), np.float32), 0
        for batch_indices, images in loader:
            if int(batch_indices[0]) != shard_rows[filled]:
                raise RuntimeError('the DataLoader returned images out of order')
            images = images.to(self.device, non_blocking=True)
            embeddings = F.normalize(self.model.encode_image(images).float(), dim=-1).cpu()
            embeddings = embeddings.numpy()
            while len(embeddings):
                take = min(len(embeddings), len(shard_rows) - filled)
                buffer[filled:filled + take] = embeddings[:take]
                embeddings, filled = embeddings[take:], filled + take
                if filled == len(shard_rows):
                    _write_shard(shards / f'shard-{shard:05d}.npy', buffer)
                    shard, shard_rows = next(pending, (None, range(0)))
                    buffer, filled = np.empty((len(shard_rows), self.dim), np.float32), 0
            if bar is not None:
                bar.update(len(images))
        if bar is not None:
            print()

    def _assemble(self, plan: dict, out: Path) -> RetrievalIndex:
        """All shards into one FAISS index; ``index.faiss`` then ``manifest.json``."""
        faiss = import_faiss()
        shards = out / SHARDS_DIR
        count = len(plan['files'])
        paths = [shards / f'shard-{s:05d}.npy' for s in range(plan['num_shards'])]
        missing = [p.name for s, p in enumerate(paths) if not self._shard_done(shards, s, count)]
        if missing:
            raise RuntimeError(f'shards {", ".join(missing)} are missing after extraction; '
                               'rerun the build to make them')
        index = self._new_index()
        if not index.is_trained:
            print_log(f'training the {self.index_factory} index on '
                      f'{min(self.train_size, count)} embeddings', logger='current')
            sample = self._training_sample(paths, count)
            try:
                index.train(sample)
            except RuntimeError as err:
                raise ValueError(f'cannot train a {self.index_factory!r} index on {len(sample)} '
                                 f'embeddings ({err}); use a smaller index or \'Flat\'') from err
        for path in paths:
            index.add(np.load(path))
        write_atomic(out / INDEX_FILE,
                     lambda f: faiss.write_index(index, faiss.PyCallbackIOWriter(f.write)))
        manifest = dict(
            format=FORMAT, model_id=self.clip.model_id,
            weights_fingerprint=self.weights_fingerprint, preprocessing=self.preprocessing,
            dim=self.dim, count=count, root=plan['root'], files=plan['files'],
            index=dict(factory=self.index_factory, metric='inner_product',
                       search_params=self.search_params))
        write_atomic(out / MANIFEST, lambda f: f.write(json.dumps(manifest, indent=1).encode()))
        if not self.keep_shards:
            shutil.rmtree(shards)
        print_log(f'wrote a {self.index_factory} index of {count} images to {out}',
                  logger='current')
        return RetrievalIndex.load(out)

    def _new_index(self):
        faiss = import_faiss()
        try:
            index = faiss.index_factory(self.dim, self.index_factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as err:
            raise ValueError(f'FAISS does not know the index {self.index_factory!r} ({err}); '
                             "e.g. 'Flat', 'IVF4096,Flat', 'IVF4096,PQ64', 'HNSW32,Flat'") from err
        if self.search_params:
            try:
                faiss.ParameterSpace().set_index_parameters(index, self.search_params)
            except RuntimeError as err:
                raise ValueError(f'search parameters {self.search_params!r} do not fit a '
                                 f'{self.index_factory!r} index ({err})') from err
        return index

    def _training_sample(self, paths: list[Path], count: int) -> np.ndarray:
        """A seeded random sample of the embeddings, read shard by shard."""
        size = min(self.train_size, count)
        chosen = np.sort(np.random.default_rng(0).choice(count, size, replace=False))
        parts = []
        for shard, path in enumerate(paths):
            rows = self._shard_rows(shard, count)
            mine = chosen[(chosen >= rows.start) & (chosen < rows.stop)] - rows.start
            if len(mine):
                parts.append(np.load(path, mmap_mode='r')[mine])
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def _probe_dim(self) -> int:
        size = self.preprocessing['center_crop']
        with torch.inference_mode():
            probe = torch.zeros(1, 3, *size, device=self.device)
            return int(self.model.encode_image(probe).shape[-1])
