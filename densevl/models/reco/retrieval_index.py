"""ReCo's retrieval index: CLIP image embeddings of an unlabeled collection, searched by cosine.

An index is a folder written by :class:`~densevl.models.reco.index_builder.RetrievalIndexBuilder`
(``tools/build_retrieval_index.py``)::

    manifest.json   what was embedded, how and by which model (written last: its presence
                    means the build finished)
    index.faiss     a FAISS index of the L2-normalised float32 embeddings, inner-product metric
                    (so a score is a cosine); row ``i`` is ``manifest['files'][i]``
    shards/         only while a build is unfinished (or with ``--keep-shards``)

FAISS (``pip install faiss-cpu``, the ``reco`` extra) is imported when an index is loaded or
built, not with this module.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..text.text_embedder import weights_fingerprint

FORMAT = 'densevl-retrieval-index/1'
MANIFEST = 'manifest.json'
INDEX_FILE = 'index.faiss'
SHARDS_DIR = 'shards'
# FAISS's exact search multiplies the queries by blocks of 1,024 database vectors by default:
# with a few hundred queries that product is too small (on 2 cores, 5x slower than one matmul);
# blocks of about this many bytes of scores match one matmul without its (K, N) score matrix.
SCORE_BLOCK_BYTES = 64 << 20
# manifest keys that decide what a search returns (a reference-embedding cache keys on them)
_CONTENT_KEYS = ('model_id', 'weights_fingerprint', 'preprocessing', 'dim', 'files', 'count',
                 'index')


class IndexModelMismatchError(ValueError):
    """A retrieval index is queried with another CLIP than the one that built it."""


def import_faiss():
    """The ``faiss`` module, or an ImportError that says how to install it."""
    try:
        import faiss
    except ImportError as err:
        raise ImportError('the ReCo retrieval index needs FAISS: pip install faiss-cpu (or '
                          "pip install -e '.[reco]'; faiss-gpu where CUDA is wanted)") from err
    return faiss


def clip_fingerprint(model: nn.Module) -> str:
    """Fingerprint of a whole CLIP's weights (both towers: queries come from the text tower,
    the index from the image tower), as recorded in an index's manifest and given to
    :meth:`RetrievalIndex.check_model`."""
    return weights_fingerprint(chain(model.named_parameters(), model.named_buffers()))


class RetrievalIndex:
    """A built retrieval index: exact or approximate top-k cosine search over image embeddings.

    Args:
        index: the FAISS index (inner-product metric, ``manifest['count']`` vectors).
        manifest: the index's manifest (see :meth:`load`).
        path: the folder it was loaded from, for messages; None for one built in memory.

    Example:
        >>> index = RetrievalIndex.load('data/reco_index/imagenet_train_vit-l14-336')
        >>> index.check_model(clip.model_id, clip_fingerprint(clip.model))
        >>> scores, ids = index.search(text_embeddings, k=50)   # (K, 50), (K, 50)
        >>> index.paths(ids[0])                                 # the 50 images of concept 0
    """

    def __init__(self, index, manifest: dict, path: str | os.PathLike | None = None) -> None:
        self.index = index
        self.manifest = manifest
        self.path = Path(path) if path is not None else None
        self._fingerprint: str | None = None

    @classmethod
    def load(cls, path: str | os.PathLike) -> RetrievalIndex:
        """Read the index folder ``path``.

        ``manifest`` holds: ``model_id`` and ``weights_fingerprint`` (:func:`clip_fingerprint`)
        of the CLIP that embedded the images; ``preprocessing`` (resize of the short side,
        interpolation, centre crop, mean, std; embedding L2-normalised, float32); ``dim``;
        ``count`` and ``files`` (``count`` paths, relative to ``root``, in index-row order);
        ``root``; ``index`` (FAISS factory string, metric, search parameters).

        Raises:
            FileNotFoundError: no such folder, or no index in it.
            RuntimeError: the folder holds an unfinished build (rerun the build to resume it).
            ValueError: an unreadable manifest, an empty index, or an index that disagrees with
                its manifest.
        """
        path = Path(path)
        manifest_file = path / MANIFEST
        if not manifest_file.is_file():
            shards = path / SHARDS_DIR
            if shards.is_dir():
                done = len(list(shards.glob('shard-*.npy')))
                raise RuntimeError(
                    f'{path} holds an interrupted index build ({done} finished shards, no '
                    'manifest): rerun tools/build_retrieval_index.py with the same arguments to '
                    'resume it')
            what = 'folder' if path.is_dir() else 'path'
            raise FileNotFoundError(
                f'no retrieval index at {path} (the {what} has no {MANIFEST}); build one with '
                'tools/build_retrieval_index.py IMAGES OUT_DIR --model NAME --weights WEIGHTS')
        try:
            manifest = json.loads(manifest_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f'unreadable retrieval-index manifest {manifest_file}: {err}') from err
        problem = _manifest_problem(manifest)
        if problem:
            raise ValueError(f'{manifest_file} is not a retrieval-index manifest ({problem})')
        if manifest['count'] == 0:
            raise ValueError(f'the retrieval index {path} is empty (0 images); rebuild it from a '
                             'collection that holds images')
        faiss = import_faiss()
        index_file = path / INDEX_FILE
        if not index_file.is_file():
            raise FileNotFoundError(f'{index_file} is missing beside its manifest; rebuild the '
                                    'index')
        index = faiss.read_index(str(index_file))
        if index.ntotal != manifest['count'] or index.d != manifest['dim']:
            raise ValueError(f'{index_file} holds {index.ntotal} vectors of {index.d} dimensions '
                             f'but its manifest says {manifest["count"]} of {manifest["dim"]}; '
                             'rebuild the index')
        params = manifest['index'].get('search_params')
        if params:
            faiss.ParameterSpace().set_index_parameters(index, params)
        return cls(index, manifest, path)

    def __len__(self) -> int:
        return int(self.manifest['count'])

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.path or "<memory>"}: {len(self)} images, '
                f'{self.manifest["model_id"]}, {self.manifest["index"]["factory"]})')

    @property
    def fingerprint(self) -> str:
        """sha1 (hex) of what decides search results: the model and its weights, the
        preprocessing, the file list (relative to ``root``, so a moved collection keeps it) and
        the FAISS index type and search parameters. Caches of reference embeddings key on it."""
        if self._fingerprint is None:
            content = {key: self.manifest[key] for key in _CONTENT_KEYS}
            blob = json.dumps(content, sort_keys=True, separators=(',', ':')).encode()
            self._fingerprint = hashlib.sha1(blob).hexdigest()
        return self._fingerprint

    def check_model(self, model_id: str, fingerprint: str) -> None:
        """Refuse to be queried by another CLIP than the one that built the index.

        The weights decide: ``fingerprint`` (:func:`clip_fingerprint` of the querying model)
        must equal the manifest's ``weights_fingerprint``; ``model_id`` only names the models in
        the message.

        Raises:
            IndexModelMismatchError: naming both models.
        """
        built_id = self.manifest['model_id']
        built = self.manifest['weights_fingerprint']
        if fingerprint == built:
            return
        raise IndexModelMismatchError(
            f'the retrieval index {self.path or "<memory>"} was built with {built_id} (weights '
            f'{built[:12]}) but is queried with {model_id} (weights {fingerprint[:12]}): its image '
            f'embeddings are not in {model_id}\'s embedding space. Query it with {built_id}, or '
            f'build an index with {model_id} (tools/build_retrieval_index.py --model ...)')

    @torch.no_grad()
    def search(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """The ``k`` images of highest cosine with each query, best first.

        When the index holds fewer than ``k`` images, every image is returned for every query:
        the results have ``min(k, len(self))`` columns, and a ``UserWarning`` says so. An
        approximate index (IVF, HNSW) may find fewer than that for a query; its missing places
        are filled with id ``-1`` and score ``-inf`` (never with an exact index).

        Args:
            queries: L2-normalised embeddings in the index model's space (e.g. text embeddings
                of concepts), any float dtype (searched in float32).
            k: how many images per query.

        Shapes:
            queries: ``(K, C)``; returns scores ``(K, k')`` float32 and ids ``(K, k')`` int64
            (rows of the index, see :meth:`paths`), ``k' = min(k, len(self))``, on the
            queries' device.
        """
        dim = self.manifest['dim']
        if queries.ndim != 2 or queries.shape[1] != dim:
            raise ValueError(f'queries must be (K, {dim}), got {tuple(queries.shape)}')
        if not queries.is_floating_point():
            raise TypeError(f'queries must be floating point, got {queries.dtype}')
        if not isinstance(k, int) or k < 1:
            raise ValueError(f'k must be a positive int, got {k!r}')
        q = queries.detach().float().cpu().contiguous()
        norms = q.norm(dim=1)
        if not torch.allclose(norms, torch.ones_like(norms), atol=1e-3):
            raise ValueError('queries must be L2-normalised (norms from '
                             f'{float(norms.min()):.4g} to {float(norms.max()):.4g}); '
                             'use torch.nn.functional.normalize(queries, dim=-1)')
        count = len(self)
        if k > count:
            warnings.warn(f'the retrieval index holds {count} images, fewer than k={k}: '
                          f'returning all {count} for each query', UserWarning, stacklevel=3)
            k = count
        if len(q) == 0:
            empty = torch.empty(0, k)
            return empty.to(queries.device), empty.long().to(queries.device)
        faiss = import_faiss()
        default_block = faiss.cvar.distance_compute_blas_database_bs
        per_query = 4 * min(len(q), faiss.cvar.distance_compute_blas_query_bs)
        faiss.cvar.distance_compute_blas_database_bs = min(
            max(SCORE_BLOCK_BYTES // per_query, default_block), 1 << 17)
        try:
            scores, ids = self.index.search(q.numpy(), k)
        finally:  # a process-wide setting of FAISS: other callers keep theirs
            faiss.cvar.distance_compute_blas_database_bs = default_block
        scores = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))
        ids = torch.from_numpy(ids.astype(np.int64, copy=False))
        scores[ids < 0] = float('-inf')
        return scores.to(queries.device), ids.to(queries.device)

    def paths(self, ids: Tensor | Sequence[int]) -> list[str]:
        """The image files of index rows ``ids`` (``(n,)``), under the collection's root."""
        if isinstance(ids, Tensor):
            if ids.ndim != 1:
                raise ValueError(f'ids must be one-dimensional, got shape {tuple(ids.shape)}')
            ids = ids.tolist()
        files, root, count = self.manifest['files'], self.manifest['root'], len(self)
        out = []
        for i in map(int, ids):
            if not 0 <= i < count:
                raise IndexError(f'image id {i} is not in the retrieval index (0..{count - 1}); '
                                 'id -1 marks a place an approximate search left empty')
            out.append(os.path.join(root, files[i]))
        return out


def _manifest_problem(manifest) -> str | None:
    if not isinstance(manifest, dict):
        return f'a {type(manifest).__name__}, not an object'
    if manifest.get('format') != FORMAT:
        return f'format {manifest.get("format")!r}, expected {FORMAT!r}'
    missing = [key for key in (*_CONTENT_KEYS, 'root') if key not in manifest]
    if missing:
        return f'no {", ".join(missing)}'
    if len(manifest['files']) != manifest['count']:
        return f'{len(manifest["files"])} files for a count of {manifest["count"]}'
    return None
