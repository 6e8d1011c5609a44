"""ReCo's retrieval index: building (one process, resumed, torchrun on gloo), FAISS search
against brute force, the manifest, and the errors a user meets."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from densevl.models.clip import create_clip
from densevl.models.reco import index_builder
from densevl.models.reco.index_builder import (
    RetrievalIndexBuilder,
    list_images,
    preprocessing_transform,
)
from densevl.models.reco.retrieval_index import (
    IndexModelMismatchError,
    RetrievalIndex,
    clip_fingerprint,
)

REPO = Path(__file__).resolve().parents[1]
NUM_IMAGES = 10


@pytest.fixture(scope='module')
def images(tmp_path_factory) -> Path:
    """Ten images of several sizes and formats, one in a subfolder, beside a non-image file."""
    root = tmp_path_factory.mktemp('collection')
    (root / 'sub').mkdir()
    rng = np.random.default_rng(0)
    for i in range(NUM_IMAGES):
        height, width = (int(v) for v in rng.integers(40, 120, 2))
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        name = root / ('sub' if i == 7 else '.') / f'img{i:02d}.{"png" if i % 3 else "jpg"}'
        Image.fromarray(pixels).save(name)
    (root / 'notes.txt').write_text('not an image')
    return root


@pytest.fixture(scope='module')
def clip():
    return create_clip('clip-tiny-random')


def make_builder(clip, **kwargs) -> RetrievalIndexBuilder:
    options = dict(batch_size=4, num_workers=0, shard_size=3, progress=False)
    return RetrievalIndexBuilder(clip, **{**options, **kwargs})


@pytest.fixture(scope='module')
def built(images, clip, tmp_path_factory) -> RetrievalIndex:
    return make_builder(clip).build(images, tmp_path_factory.mktemp('index') / 'flat')


def reference_embeddings(clip, root: Path, files: list[str], preprocessing: dict) -> torch.Tensor:
    """Each image embedded on its own, outside the builder."""
    transform = preprocessing_transform(preprocessing)
    with torch.no_grad():
        batch = torch.stack([transform(Image.open(root / f)) for f in files])
        return F.normalize(clip.model.encode_image(batch), dim=-1)


def stored_embeddings(index: RetrievalIndex) -> torch.Tensor:
    return torch.from_numpy(index.index.reconstruct_n(0, len(index)))


def unit_queries(num: int, dim: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(num, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_manifest_and_embeddings(built, clip, images):
    manifest = built.manifest
    root, files = list_images(images)
    assert manifest['count'] == len(manifest['files']) == NUM_IMAGES == len(built)
    assert manifest['files'] == files and os.path.join('sub', 'img07.png') in files
    assert manifest['root'] == str(root)
    assert manifest['model_id'] == clip.model_id == 'clip-tiny-random@random'
    assert manifest['weights_fingerprint'] == clip_fingerprint(clip.model)
    assert manifest['dim'] == 64 and manifest['index']['factory'] == 'Flat'
    pre = manifest['preprocessing']
    assert pre['center_crop'] == [224, 224] and pre['interpolation'] == 'bicubic'
    expected = reference_embeddings(clip, root, files, pre)
    torch.testing.assert_close(stored_embeddings(built), expected, atol=1e-5, rtol=0)
    assert not (Path(built.path) / 'shards').exists()
    reloaded = RetrievalIndex.load(built.path)
    assert reloaded.fingerprint == built.fingerprint and len(built.fingerprint) == 40


def test_search_matches_brute_force(built):
    queries = unit_queries(6, 64)
    scores, ids = built.search(queries, k=4)
    assert scores.shape == ids.shape == (6, 4) and ids.dtype == torch.long
    brute_scores, brute_ids = (queries @ stored_embeddings(built).T).topk(4, dim=1)
    assert torch.equal(ids, brute_ids)
    torch.testing.assert_close(scores, brute_scores, atol=1e-5, rtol=0)
    paths = built.paths(ids[0])
    assert len(paths) == 4 and all(os.path.isfile(p) for p in paths)
    assert paths[0] == os.path.join(built.manifest['root'], built.manifest['files'][ids[0, 0]])


def test_fewer_images_than_k(built):
    with pytest.warns(UserWarning, match='holds 10 images, fewer than k=50'):
        scores, ids = built.search(unit_queries(3, 64), k=50)
    assert scores.shape == ids.shape == (3, NUM_IMAGES)
    assert sorted(ids[0].tolist()) == list(range(NUM_IMAGES))


def test_search_refuses_bad_queries(built):
    with pytest.raises(ValueError, match='L2-normalised'):
        built.search(torch.randn(2, 64) * 3, k=2)
    with pytest.raises(ValueError, match=r'\(K, 64\)'):
        built.search(unit_queries(2, 32), k=2)
    with pytest.raises(IndexError, match='not in the retrieval index'):
        built.paths([NUM_IMAGES])


@pytest.mark.parametrize('factory,params', [('IVF2,Flat', 'nprobe=2'),
                                            ('HNSW8,Flat', 'efSearch=64')])
def test_approximate_index_against_brute_force(images, clip, built, tmp_path, factory, params):
    """IVF searching all its lists, and HNSW on a tiny set, find the exact answer."""
    index = make_builder(clip, index_factory=factory, search_params=params).build(images,
                                                                                tmp_path / 'i')
    assert index.manifest['index'] == dict(factory=factory, metric='inner_product',
                                           search_params=params)
    assert index.fingerprint != built.fingerprint
    queries = unit_queries(5, 64, seed=1)
    scores, ids = index.search(queries, k=3)
    brute_scores, brute_ids = built.search(queries, k=3)
    assert torch.equal(ids, brute_ids)
    torch.testing.assert_close(scores, brute_scores, atol=1e-5, rtol=0)


def test_bad_index_options(clip):
    with pytest.raises(ValueError, match='FAISS does not know'):
        make_builder(clip, index_factory='NotAnIndex')
    with pytest.raises(ValueError, match='do not fit'):
        make_builder(clip, index_factory='Flat', search_params='nprobe=4')


def test_resume_after_interruption(images, clip, built, tmp_path, monkeypatch):
    """Killed while writing shard 1: shard 0 is kept, the half-written file and a corrupt shard
    are discarded, and the resumed index equals an uninterrupted one."""
    out = tmp_path / 'index'
    real_write = index_builder._write_shard
    written = []

    def killed_after_one(path, embeddings):
        if written:
            (path.parent / f'.{path.name}.abc123.tmp').write_bytes(b'\x93NUMPY half')
            raise KeyboardInterrupt('killed')
        written.append(path.name)
        real_write(path, embeddings)

    monkeypatch.setattr(index_builder, '_write_shard', killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        make_builder(clip).build(images, out)
    shards = out / 'shards'
    assert written == ['shard-00000.npy'] and (shards / '.shard-00001.npy.abc123.tmp').exists()
    (shards / 'shard-00002.npy').write_bytes(b'garbage')          # e.g. a copy cut short
    kept = (shards / 'shard-00000.npy').stat().st_mtime_ns
    with pytest.raises(RuntimeError, match='interrupted index build.*resume'):
        RetrievalIndex.load(out)

    resumed = []
    monkeypatch.setattr(index_builder, '_write_shard',
                        lambda path, e: (resumed.append(path.name), real_write(path, e)))
    index = make_builder(clip, keep_shards=True).build(images, out)
    assert resumed == ['shard-00001.npy', 'shard-00002.npy', 'shard-00003.npy']
    assert (shards / 'shard-00000.npy').stat().st_mtime_ns == kept
    assert not list(shards.glob('.*.tmp'))
    assert torch.equal(stored_embeddings(index), stored_embeddings(built))
    assert index.fingerprint == built.fingerprint


def test_resume_refuses_another_plan(images, clip, tmp_path, monkeypatch):
    out = tmp_path / 'index'

    def killed(path, embeddings):
        raise KeyboardInterrupt('killed')

    monkeypatch.setattr(index_builder, '_write_shard', killed)
    with pytest.raises(KeyboardInterrupt):
        make_builder(clip).build(images, out)
    monkeypatch.undo()
    other = create_clip('clip-tiny-random-rn')
    with pytest.raises(RuntimeError, match='clip-tiny-random@random.*clip-tiny-random-rn@random'):
        make_builder(other).build(images, out)
    with pytest.raises(RuntimeError, match='shard_size'):
        make_builder(clip, shard_size=4).build(images, out)
    index = make_builder(other).build(images, out, restart=True)
    assert index.manifest['model_id'] == 'clip-tiny-random-rn@random'


def test_model_mismatch_names_both_models(built, clip):
    built.check_model(clip.model_id, clip_fingerprint(clip.model))
    built.check_model('renamed', clip_fingerprint(clip.model))   # the weights decide
    other = create_clip('clip-tiny-random-rn')
    with pytest.raises(IndexModelMismatchError,
                       match=r'built with clip-tiny-random@random .* queried with '
                             r'clip-tiny-random-rn@random'):
        built.check_model(other.model_id, clip_fingerprint(other.model))


def test_missing_empty_and_finished_indexes(images, clip, built, tmp_path):
    with pytest.raises(FileNotFoundError, match='no retrieval index at'):
        RetrievalIndex.load(tmp_path / 'nowhere')
    (tmp_path / 'empty_collection').mkdir()
    with pytest.raises(ValueError, match='no images in'):
        make_builder(clip).build(tmp_path / 'empty_collection', tmp_path / 'index')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        make_builder(clip).build(tmp_path / 'no_collection', tmp_path / 'index')
    empty = tmp_path / 'empty_index'
    empty.mkdir()
    manifest = dict(built.manifest, count=0, files=[])
    (empty / 'manifest.json').write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match='is empty'):
        RetrievalIndex.load(empty)
    (empty / 'manifest.json').write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match='not a retrieval-index manifest'):
        RetrievalIndex.load(empty)
    with pytest.raises(FileExistsError, match='--overwrite'):
        make_builder(clip).build(images, built.path)


def test_list_file_with_workers(images, clip, built, tmp_path):
    """A list file (relative paths, comments) through DataLoader workers gives the same rows."""
    listing = images / 'list.txt'
    listing.write_text('# a comment\n\n' + '\n'.join(built.manifest['files']) + '\n')
    try:
        index = make_builder(clip, num_workers=2, batch_size=3).build(listing, tmp_path / 'i')
    finally:
        listing.unlink()
    assert index.manifest['files'] == built.manifest['files']
    torch.testing.assert_close(stored_embeddings(index), stored_embeddings(built),
                               atol=1e-6, rtol=0)


def test_torchrun_two_ranks_on_gloo(images, built, tmp_path):
    """Two CPU ranks (torchrun, gloo) split the shards; the index equals the one-process one."""
    out = tmp_path / 'index'
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
               '--master_port', str(29400 + os.getpid() % 500),
               str(REPO / 'tools' / 'build_retrieval_index.py'), str(images), str(out),
               '--model', 'clip-tiny-random', '--shard-size', '3', '--batch-size', '4',
               '--workers', '0', '--launcher', 'pytorch', '--no-progress']
    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert done.returncode == 0, done.stderr[-3000:]
    assert '2 rank(s)' in done.stdout
    index = RetrievalIndex.load(out)
    assert index.manifest['files'] == built.manifest['files']
    torch.testing.assert_close(stored_embeddings(index), stored_embeddings(built),
                               atol=1e-5, rtol=0)


def test_benchmark_smoke(capsys):
    """tools/benchmark_reco.py's retrieval and build cases on tiny sizes, to its RESULT line."""
    from _tools import load_tool

    load_tool('benchmark_reco').main(
        ['--collection', '3000', '--repeats', '1', '--cases', 'retrieval,build',
         '--build-images', '6', '--build-model', 'clip-tiny-random', '--build-batch', '4',
         '--build-workers', '0'])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith('RESULT reco_retrieval_speedup=')
    assert ' index_build_efficiency=' in last
