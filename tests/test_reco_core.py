"""ReCo's plain-PyTorch core against golden tensors of the reference, and its behaviour.

``tests/golden/reco.pt`` holds seeded banks of archive features, the reference's (NoelShin/reco)
outputs on them — the 85-template text query, MaskCLIP's value path, language guidance, context
elimination, seeds and references with the paper's and the code's slicing, progressive context
categories, the inference map and its DenseCRF — and the co-segmentation ViT's patch tokens;
``tools/make_golden_reco.py`` made it (see ``tests/golden/README.md``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from densevl.models import reco
from densevl.models.clip import CLIPDenseResNet, build_dense_encoder, create_clip
from densevl.models.reco.coseg import context_weights, per_image_max
from densevl.models.reco.crf import unnormalise
from densevl.models.text import TextEmbedder, Vocabulary, get_templates

GOLDEN = Path(__file__).parent / 'golden' / 'reco.pt'
ATOL = 1e-5
# pydensecrf2 is part of the full install (tools/install.sh); only the bare GPU machine, which
# runs this module without OpenMMLab or pydensecrf, skips these (conftest: full_install)
requires_crf = pytest.mark.full_install


@pytest.fixture(scope='module')
def golden() -> dict:
    return torch.load(GOLDEN, weights_only=True)


# ----- stand-ins for the retrieval index and the encoders, over the golden banks ---------------

class MemoryIndex:
    """The retrieval-index interface over fixed results: query ``i`` (one-hot) gets ``ids[i]``."""

    fingerprint = 'memory-index'

    def __init__(self, ids: list[torch.Tensor], num_images: int) -> None:
        self.ids = ids
        self.files = [f'img/{i:05d}' for i in range(num_images)]

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [self.ids[int(q.argmax())][:k] for q in queries]
        width = max(len(r) for r in rows)
        ids = torch.stack([F.pad(r, (0, width - len(r)), value=-1) for r in rows])
        return torch.zeros(ids.shape), ids

    def paths(self, ids) -> list[str]:
        return [self.files[int(i)] for i in ids]


class FixedText:
    """A text embedder whose embeddings are given (``fingerprint`` and ``templates_hash`` too)."""

    def __init__(self, embeddings: dict[str, torch.Tensor], name: str) -> None:
        self.embeddings = embeddings
        self.fingerprint = self.model_id = name
        self.templates_hash = 'fixed'

    def __call__(self, names) -> Vocabulary:
        vocab = Vocabulary.parse(list(names))
        return vocab.with_embeddings(torch.stack([self.embeddings[q] for q in vocab.queries]))


class BankEncoder(nn.Module):
    """Looks each image up by its id: pixel ``[0, 0, 0]`` of a 1x1 archive placeholder, or which
    of the golden inference images it is."""

    def __init__(self, bank: torch.Tensor, inference_images: torch.Tensor, inference_ids,
                 name: str) -> None:
        super().__init__()
        self.bank = nn.Parameter(bank, requires_grad=False)
        self.inference_images, self.inference_ids = inference_images, inference_ids
        self.model_id = self.fingerprint = name
        self.mode = 'maskclip'

    def ids(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] == 1:
            return images[:, 0, 0, 0].round().long()
        return torch.stack([next(i for img, i in zip(self.inference_images, self.inference_ids)
                                 if torch.equal(img, image)) for image in images])

    def forward(self, images):
        return self.bank[self.ids(images)]

    def forward_dense(self, images, return_global=True):
        return SimpleNamespace(dense=self.bank[self.ids(images)])


class Loads:
    """``load_images`` of the builder: placeholders carrying the ids, counted."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, paths, size, mean, std) -> torch.Tensor:
        self.calls += 1
        images = torch.zeros(len(paths), 3, 1, 1)
        images[:, 0, 0, 0] = torch.tensor([float(p.rsplit('/', 1)[-1]) for p in paths])
        return images


def _builder(golden, *, slicing='paper', cache_dir=False, k=None, loads=None,
             **settings) -> reco.ReferenceBuilder:
    inp, cfg = golden['inputs'], golden['config']
    concepts = list(inp['retrieved'])
    onehot = dict(zip(concepts, torch.eye(len(concepts))))
    index = MemoryIndex([inp['retrieved'][c] for c in concepts], len(inp['feats']))
    images, ids = inp['images'], inp['inference_ids']
    return reco.ReferenceBuilder(
        index=index, retrieval_text=FixedText(onehot, 'onehot'),
        patch_encoder=BankEncoder(inp['feats'], images, ids, 'feats'),
        dense_encoder=BankEncoder(inp['dense'], images, ids, 'dense'),
        guidance_text=FixedText(inp['text'], 'text'),
        settings=reco.ReCoSettings(k=k or cfg['k'], slicing=slicing, context=cfg['context'],
                              **settings),
        cache_dir=cache_dir, load_images=loads or Loads())


# ----- golden tensors --------------------------------------------------------------------------

def test_golden_record_names_the_reference(golden):
    ref = golden['reference']
    assert ref['commit'] == '5c5e1bcd52a1739423f2829191b303be0123dc76' and ref['verified']
    assert golden['templates'] == get_templates('reco85')
    for what, value in golden['visible'].items():
        assert value > 1e-2, what


def test_text_query_matches_the_reference(golden):
    cfg = golden['config']
    bundle = create_clip(cfg['text_model'])
    from densevl.models.text.text_embedder import weights_fingerprint
    assert weights_fingerprint(bundle.model.named_parameters()) == cfg['text_model_fingerprint']
    embed = TextEmbedder(bundle.model, bundle.tokenizer, model_id=bundle.model_id,
                         templates='reco85', cache_dir=False)
    ours = embed(list(cfg['text_concepts'])).embeddings
    torch.testing.assert_close(ours, golden['text_query'], atol=ATOL, rtol=0)


def test_maskclip_value_path_matches_the_reference_dense_clip(golden):
    from open_clip.modified_resnet import ModifiedResNet

    inp, cfg = golden['inputs'], golden['config']
    visual = ModifiedResNet(layers=(1, 1, 1, 1), output_dim=cfg['embed_dim'], heads=2,
                            image_size=64, width=cfg['res5']['dim'] // 32).eval()
    pool = {k: v for k, v in inp['attnpool'].items()}
    visual.attnpool.load_state_dict({**visual.attnpool.state_dict(), **pool})
    with torch.no_grad():
        dense = CLIPDenseResNet(visual, mode='maskclip').value_path(inp['res5'])
    torch.testing.assert_close(dense, inp['dense'], atol=ATOL, rtol=0)


@pytest.mark.parametrize('slicing', ['paper', 'code'])
def test_guidance_context_seeds_and_reference_match(golden, slicing):
    inp, out = golden['inputs'], golden['outputs'][slicing]
    ids = inp['retrieved']['cat']
    feats, dense, text = inp['feats'][ids], inp['dense'][ids], inp['text']['cat']
    grid = tuple(feats.shape[-2:])
    guidance = reco.language_guidance(dense, text, grid)
    torch.testing.assert_close(guidance, out['cat']['guidance'], atol=ATOL, rtol=0)
    weights = guidance * context_weights(feats, out['context'])
    torch.testing.assert_close(weights, out['cat']['weights'], atol=ATOL, rtol=0)
    result = reco.reference_embedding(feats, weights, slicing=slicing)
    torch.testing.assert_close(result.seed_features, out['cat']['seed_features'], atol=ATOL,
                               rtol=0)
    torch.testing.assert_close(result.reference, out['cat']['reference'], atol=ATOL, rtol=0)
    whole = reco.cosegment(feats, dense, text, out['context'], slicing=slicing)
    torch.testing.assert_close(whole.reference, out['targets'][0], atol=ATOL, rtol=0)


@pytest.mark.parametrize('slicing', ['paper', 'code'])
def test_builder_makes_the_reference_contexts_and_targets(golden, slicing):
    cfg, out = golden['config'], golden['outputs'][slicing]
    builder = _builder(golden, slicing=slicing)
    # targets first: the context categories are built on the way, progressively
    torch.testing.assert_close(builder(cfg['targets']), out['targets'], atol=ATOL, rtol=0)
    torch.testing.assert_close(builder(cfg['context']), out['context'], atol=ATOL, rtol=0)
    vegetation = builder(['vegetation', 'tree'])
    assert torch.equal(vegetation[0], vegetation[1])


@requires_crf
@pytest.mark.parametrize('slicing', ['paper', 'code'])
def test_inference_map_and_crf_match(golden, slicing):
    inp, cfg, out = golden['inputs'], golden['config'], golden['outputs'][slicing]
    concepts = list(cfg['inference_concepts'])
    refs = dict(zip(cfg['context'], out['context'])) | dict(zip(cfg['targets'], out['targets']))
    ids = inp['inference_ids']
    scores = reco.reco_score_map(inp['feats'][ids], torch.stack([refs[c] for c in concepts]),
                            inp['dense'][ids], torch.stack([inp['text'][c] for c in concepts]),
                            cfg['image_hw'])
    torch.testing.assert_close(scores, out['scores'], atol=ATOL, rtol=0)

    segmenter = reco.ReCoSegmenter(_builder(golden, slicing=slicing))
    vocab = segmenter.vocabulary(concepts)
    torch.testing.assert_close(segmenter.score_maps(inp['images'], vocab), out['scores'],
                               atol=ATOL, rtol=0)
    crf = segmenter.segment(inp['images'], concepts)
    plain = segmenter.segment(inp['images'], concepts, crf=False)
    for i in range(len(ids)):
        torch.testing.assert_close(crf[i].class_probs, out['crf'][i], atol=ATOL, rtol=0)
        assert torch.equal(crf[i].labels, out['crf'][i].argmax(0))
        assert torch.equal(plain[i].labels, out['scores'][i].argmax(0))


def test_unnormalise_recovers_the_pixels(golden):
    inp, cfg = golden['inputs'], golden['config']
    mean = [255 * m for m in cfg['mean']]
    std = [255 * s for s in cfg['std']]
    assert torch.equal(unnormalise(inp['images'], mean, std), inp['images_uint8'])


def test_timm_patch_tokens_match_the_reference_vit(golden):
    import timm

    enc = golden['encoder']
    cfg = enc['config']
    model = timm.create_model('deit_small_distilled_patch16_224', pretrained=False,
                              img_size=cfg['img_size'], embed_dim=cfg['embed_dim'],
                              depth=cfg['depth'], num_heads=cfg['num_heads'], num_classes=0)
    model.load_state_dict(enc['state'])
    with torch.no_grad():
        tokens = reco.TimmViTPatchTokens(model, model_id='tiny')(enc['images'])
    torch.testing.assert_close(tokens, enc['tokens'], atol=ATOL, rtol=0)


# ----- behaviour -------------------------------------------------------------------------------

def test_code_slicing_is_the_maximum_over_images_n_to_2n():
    torch.manual_seed(0)
    affinity = torch.rand(5, 3, 5)
    code = per_image_max(affinity, 'code')
    for n in range(5):
        torch.testing.assert_close(code[..., n], affinity[..., n:min(2 * n, 4) + 1].amax(-1))
    assert torch.equal(per_image_max(affinity, 'paper'), affinity)
    with pytest.raises(ValueError, match="'paper'.*'code'"):
        reco.reference_embedding(torch.randn(2, 4, 2, 2), slicing='codes')


def test_reference_embedding_seeds_without_the_full_matrix():
    torch.manual_seed(1)
    feats = torch.randn(4, 8, 3, 3)
    weights = torch.rand(4, 3, 3)
    result = reco.reference_embedding(feats, weights, backend='reference')
    unit = F.normalize(feats.flatten(2).transpose(1, 2).reshape(-1, 8), dim=-1)
    adj = (unit @ unit.T) * weights.reshape(1, -1)
    scores = adj.view(36, 4, 9).amax(-1).mean(-1).view(4, 9)
    assert torch.equal(result.seeds, scores.argmax(1))
    torch.testing.assert_close(result.scores.flatten(1), scores)
    expected = F.normalize(feats.flatten(2)[torch.arange(4), :, scores.argmax(1)].mean(0), dim=0)
    torch.testing.assert_close(result.reference, expected)


def test_cache_reuses_rebuilds_corrupt_files_and_writes_atomically(golden, tmp_path, caplog):
    loads = Loads()
    first = _builder(golden, cache_dir=tmp_path, loads=loads)
    refs = first(['cat'])
    assert loads.calls == 6                          # five context categories, then cat
    files = sorted(tmp_path.rglob('*'))
    assert len([f for f in files if f.is_file()]) == 6
    assert not [f for f in files if f.name.endswith('.tmp')]

    again = Loads()
    second = _builder(golden, cache_dir=tmp_path, loads=again)
    assert torch.equal(second(['cat']), refs) and again.calls == 0

    path = second.cache_file('cat')
    path.write_bytes(b'not a tensor file')
    third_loads = Loads()
    third = _builder(golden, cache_dir=tmp_path, loads=third_loads)
    with caplog.at_level(logging.WARNING):
        assert torch.equal(third(['cat']), refs)
    assert third_loads.calls == 1 and 'corrupt ReCo reference cache' in caplog.text
    assert torch.load(path, weights_only=True)['concept'] == 'cat'     # rewritten whole

    # a file of another concept (or other settings) under this name is not used either
    torch.save(torch.load(third.cache_file('sky'), weights_only=True), path)
    fourth_loads = Loads()
    assert torch.equal(_builder(golden, cache_dir=tmp_path, loads=fourth_loads)(['cat']), refs)
    assert fourth_loads.calls == 1

    # other options, other files
    code = _builder(golden, cache_dir=tmp_path, slicing='code')
    assert code.key != first.key and code.cache_file('cat') != path


def test_cache_write_failure_leaves_no_partial_file(golden, tmp_path, monkeypatch):
    builder = _builder(golden, cache_dir=tmp_path)

    def broken_save(obj, f):
        f.write(b'half')
        raise OSError('disk full')

    monkeypatch.setattr(torch, 'save', broken_save)
    ref = builder(['tree'])                                   # still returned, from memory
    assert ref.shape == (1, golden['config']['feat']['dim'])
    assert not [f for f in tmp_path.rglob('*') if f.is_file()]


def test_a_new_word_is_built_at_call_time_then_cached(golden):
    loads = Loads()
    segmenter = reco.ReCoSegmenter(_builder(golden, loads=loads), crf=None)
    images = golden['inputs']['images']
    segmenter.segment(images, ['sky', 'road'])
    assert loads.calls == 4             # contexts, up to road: tree, sky, building, road
    segmenter.segment(images, ['cat', 'sky'])
    assert loads.calls == 6             # person (the last context), then cat
    out = segmenter.segment(images, ['cat', 'sky; road'], return_probs=True)
    assert loads.calls == 6 and out[0].class_probs.shape == (2, *images.shape[-2:])


def test_fewer_than_k_images(golden):
    k = golden['config']['k'] + 1
    with pytest.raises(reco.TooFewImagesError,
                       match=r"returned 6 images for 'tree', fewer than k=7"):
        _builder(golden, k=k)(['tree'])
    with pytest.warns(UserWarning, match='fewer than k=7; co-segmenting those'):
        ref = _builder(golden, k=k, allow_fewer=True)(['tree'])
    torch.testing.assert_close(ref[0], golden['outputs']['paper']['context'][0], atol=ATOL,
                               rtol=0)


@requires_crf
def test_dense_crf_is_a_distribution_that_follows_edges():
    h, w = 12, 16
    image = np.zeros((h, w, 3), np.uint8)
    image[:, w // 2:] = 255
    probs = torch.full((2, h, w), 0.5)
    probs[0, :, :3], probs[1, :, :3] = 0.9, 0.1                    # a confident left strip
    probs[0, :, -3:], probs[1, :, -3:] = 0.1, 0.9                  # and a confident right strip
    q = reco.dense_crf(image, probs, reco.DenseCRFSettings())
    torch.testing.assert_close(q.sum(0), torch.ones(h, w), atol=1e-5, rtol=0)
    labels = q.argmax(0)
    assert (labels[:, : w // 2] == 0).all() and (labels[:, w // 2:] == 1).all()
    with pytest.raises(ValueError, match='uint8'):
        reco.dense_crf(image.astype(np.float32), probs)


def test_dense_crf_missing_package_says_how_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'pydensecrf.densecrf', None)
    with pytest.raises(ImportError, match='pip install pydensecrf2'):
        reco.dense_crf(np.zeros((2, 2, 3), np.uint8), torch.full((2, 2, 2), 0.5))


@requires_crf
def test_segmenter_with_tiny_real_models_and_image_files(tmp_path):
    from PIL import Image

    from densevl.models.segmentors import OpenVocabSegmenter

    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        paths.append(str(tmp_path / f'{i}.png'))
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(paths[-1])
    retrieval = create_clip('clip-tiny-random')
    dense = create_clip('clip-tiny-random-rn')

    def text(bundle):
        return TextEmbedder(bundle.model, bundle.tokenizer, model_id=bundle.model_id,
                            templates='reco85', cache_dir=False)

    class Index:
        fingerprint = 'four-images'

        def search(self, queries, k):
            return torch.zeros(len(queries), k), torch.arange(k).repeat(len(queries), 1) % 4

        def paths(self, ids):
            return [paths[int(i)] for i in ids]

    builder = reco.ReferenceBuilder(
        index=Index(), retrieval_text=text(retrieval),
        patch_encoder=reco.create_patch_encoder('clip-tiny-random'),
        dense_encoder=build_dense_encoder(dense.model.visual, mode='maskclip'),
        guidance_text=text(dense), settings=reco.ReCoSettings(k=4, image_size=64),
        cache_dir=tmp_path / 'cache')
    segmenter = reco.ReCoSegmenter(builder, random_weights=True)
    assert isinstance(segmenter, OpenVocabSegmenter)
    images = torch.randn(1, 3, 64, 96)
    out = segmenter.segment(images, ['cat', 'vegetation', 'sky'], out_size=(32, 48))
    assert out[0].labels.shape == (32, 48) and out[0].class_probs.shape == (3, 32, 48)
    assert len(list((tmp_path / 'cache').rglob('*.pt'))) == 6     # 5 contexts + cat
