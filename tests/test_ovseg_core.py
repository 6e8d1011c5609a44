"""OVSeg's plain-PyTorch core against golden tensors of the reference, and its behaviour.

``tests/golden/ovseg.pt`` holds tiny seeded fp16 weights under the reference's key names, the
inputs, and the outputs of facebookresearch/ov-seg's own modules on them (masked crops, the
mask-prompted CLIP tower, the adapter's CLIP logits, the CLIP-space head, ``semantic_inference``);
``tools/make_golden_ovseg.py`` made it (see ``tests/golden/README.md``). Everything runs in fp32.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.transformer import QuickGELU, VisionTransformer

from densevl.models import ovseg
from densevl.models.text import Vocabulary
from densevl.models.text.templates import VILD_TEMPLATES

GOLDEN = Path(__file__).parent / 'golden' / 'ovseg.pt'
ATOL = 1e-5


@pytest.fixture(scope='module')
def golden() -> dict:
    return torch.load(GOLDEN, weights_only=True)


def _tower(image_size: int, output_dim: int, seed: int = 0) -> VisionTransformer:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VisionTransformer(image_size=image_size, patch_size=16, width=64, layers=3,
                                 heads=1, mlp_ratio=4.0, output_dim=output_dim,
                                 act_layer=QuickGELU).eval()


@pytest.fixture(scope='module')
def ours(golden) -> dict:
    """densevl's modules on the golden weights and inputs."""
    weights, inputs, cfg = golden['weights'], golden['inputs'], golden['config']
    state = {k: v.float() for k, v in weights['visual'].items()}
    tower = _tower(cfg['vision']['image_resolution'], cfg['vision']['embed_dim'])
    tower.load_state_dict({k: v for k, v in state.items() if k != 'mask_embedding'})
    mpt = ovseg.MaskPromptCLIP(tower, depth=cfg['vision']['mask_prompt_depth']).eval()
    mpt.load_state_dict({'mask_embedding': state['mask_embedding'],
                         **{f'visual.{k}': v for k, v in tower.state_dict().items()}})
    head_cfg = cfg['head']
    head = ovseg.CLIPSpaceClassHead(head_cfg['input_dim'], head_cfg['output_dim'],
                              hidden_dim=head_cfg['hidden_dim'],
                              num_layers=head_cfg['num_layers']).eval()
    head.load_state_dict({**{k: v.float() for k, v in weights['class_embed'].items()},
                          'non_object_embedding': inputs['non_object_embedding'].float()})
    vocab = Vocabulary.parse(list(cfg['class_names'])).with_embeddings(inputs['text'])
    images, logits = inputs['images'].float(), inputs['mask_logits'].float()
    with torch.no_grad():
        crops = ovseg.masked_crops(images, logits, cfg['mask_thr'])
        embeddings = mpt(crops.crops, crops.region_masks)
        head_logits = head(inputs['queries'].float(), vocab)
    return dict(tower=tower, mpt=mpt, vocab=vocab, images=images, logits=logits, crops=crops,
                embeddings=embeddings, head_logits=head_logits)


# ----- golden tensors --------------------------------------------------------------------------

def test_golden_record_names_the_reference(golden):
    ref = golden['reference']
    assert ref['commit'] == '36f49d496714998058d115ffb6172d9d84c59065' and ref['verified']
    assert golden['vild_templates'] == VILD_TEMPLATES     # TextEmbedder(templates='vild14')
    for what, value in golden['visible'].items():
        assert value > 1e-2, what


def test_masked_crops_match_the_reference(golden, ours):
    ref, crops = golden['outputs'], ours['crops']
    assert torch.equal(crops.valid, ref['valid'])
    assert crops.crops.shape == (int(ref['valid'].sum()), 3, 224, 224)
    pixels = crops.crops.flatten(2)[:, :, ref['crop_pixel_index']]
    assert (pixels - ref['crop_pixels']).abs().max() < ATOL
    assert (crops.crops.double().mean(dim=(2, 3)) - ref['crop_means']).abs().max() < 1e-6
    bits = np.packbits(crops.region_masks.flatten(1).bool().numpy(), axis=1)
    assert np.array_equal(bits, ref['region_mask_bits'].numpy())
    assert set(crops.region_masks.unique().tolist()) == {0.0, 1.0}


def test_mask_prompt_forward_matches_the_reference(golden, ours):
    ref = golden['outputs']
    assert (ours['embeddings'] - ref['mpt_embeddings']).abs().max() < ATOL
    with torch.no_grad():
        plain = ours['mpt'](ours['crops'].crops)
        assert (plain - ref['plain_embeddings']).abs().max() < ATOL
        assert torch.equal(plain, ours['tower'](ours['crops'].crops))


def test_crop_logits_and_head_logits_match_the_reference(golden, ours):
    ref = golden['outputs']
    text = ovseg.text_matrix(ours['vocab'], ours['embeddings'])
    crop_logits = ovseg.cosine_logits(ours['embeddings'], text)
    # logits are 100 x cosine: compared as cosines
    assert ((crop_logits - ref['clip_logits']) / ovseg.OVSEG_TEMPERATURE).abs().max() < ATOL
    assert ours['head_logits'].shape == ref['head_logits'].shape     # (B, N, K + 1)
    assert (ours['head_logits'] - ref['head_logits']).abs().max() < ATOL


@pytest.mark.parametrize('weight', ['0.7', '0.0', 'head_only'])
def test_semantic_inference_matches_the_reference(golden, ours, weight):
    ref = golden['outputs']
    crop_logits = ovseg.cosine_logits(ours['embeddings'], ovseg.text_matrix(ours['vocab'],
                                                                ours['embeddings']))
    crops = None if weight == 'head_only' else crop_logits
    valid = None if weight == 'head_only' else ours['crops'].valid
    semseg = ovseg.semantic_inference(ours['head_logits'], ours['logits'], crops, valid,
                                clip_ensemble_weight=0.7 if weight == 'head_only'
                                else float(weight))
    assert semseg.shape == ref[f'semseg_{weight}'].shape              # (B, K, H, W)
    assert (semseg - ref[f'semseg_{weight}']).abs().max() < ATOL


def test_chunked_crops_equal_unchunked(golden, ours):
    thr = golden['config']['mask_thr']
    with torch.no_grad():
        for chunk in (1, 4, 100):
            embeddings, proposals = ovseg.encode_masked_crops(ours['mpt'], ours['images'],
                                                        ours['logits'], thr, chunk_size=chunk)
            assert torch.equal(proposals.valid, ours['crops'].valid)
            torch.testing.assert_close(embeddings, ours['embeddings'], atol=1e-6, rtol=0)
    seen = []
    ovseg.encode_masked_crops(lambda c, m: seen.append(c) or c.flatten(1)[:, :2], ours['images'],
                        ours['logits'], thr, chunk_size=4)
    assert torch.equal(torch.cat(seen), ours['crops'].crops)
    assert [len(c) for c in seen] == [4, 4, 1]


def test_the_reference_failures_densevl_handles(golden):
    # The reference cannot take an image whose masks are all empty, nor a single crop with
    # mask prompts; densevl can (see test_no_valid_mask and test_one_crop_with_mask_prompts).
    assert 'unpack' in golden['errors']['no_valid_mask']
    assert golden['errors']['one_crop_mask_prompts']


# ----- behaviour ---------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def small() -> ovseg.MaskPromptCLIP:
    mpt = ovseg.MaskPromptCLIP(_tower(32, 16), depth=3).eval()
    with torch.no_grad():
        mpt.mask_embedding.normal_(generator=torch.Generator().manual_seed(0))
    return mpt


def test_threshold_is_strict_on_the_probability():
    logits = torch.full((1, 3, 4, 5), -10.0)
    logits[0, 0] = 0.0                              # sigmoid 0.5: not > 0.5
    logits[0, 1, 2, 3] = 1e-3                       # one pixel just above
    logits[0, 2, 1:3, 0:2] = torch.logit(torch.tensor(0.45))
    proposals = ovseg.find_proposals(logits, 0.5)
    assert proposals.valid.tolist() == [[False, True, False]]
    assert proposals.boxes.tolist() == [[3, 2, 4, 3]]
    assert ovseg.find_proposals(logits, 0.4).valid.tolist() == [[True, True, True]]
    with pytest.raises(ValueError, match='probability'):
        ovseg.find_proposals(logits, 1.0)
    with pytest.raises(ValueError, match=r'\(B, Q, H, W\)'):
        ovseg.find_proposals(logits[0], 0.5)


def test_tight_boxes_have_exclusive_ends():
    gen = torch.Generator().manual_seed(3)
    binary = torch.rand(20, 7, 9, generator=gen) > 0.93
    binary[0] = False
    for mask, box in zip(binary, ovseg.tight_boxes(binary).tolist()):
        ys, xs = mask.nonzero(as_tuple=True)
        expected = [0, 0, 0, 0] if len(ys) == 0 else \
            [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        assert box == expected


def test_crop_fills_outside_with_the_mean_and_normalises():
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (1, 3, 8, 8), generator=gen).float()
    logits = torch.full((1, 1, 8, 8), -5.0)
    logits[0, 0, 0, :3] = 5.0
    logits[0, 0, 5:, 6:] = 5.0                      # two blobs: the box spans the image
    crops = ovseg.masked_crops(images, logits, 0.5, size=8)   # no resize: the crop itself
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(3, 1, 1) * 255
    std = torch.tensor(OPENAI_DATASET_STD).view(3, 1, 1) * 255
    inside = logits[0, 0] > 0
    assert torch.equal(crops.region_masks[0, 0], inside.float())
    assert torch.equal(crops.crops[0][:, inside], ((images[0] - mean) / std)[:, inside])
    assert torch.equal(crops.crops[0][:, ~inside], torch.zeros(3, int((~inside).sum())))
    with pytest.raises(ValueError, match='same batch size and resolution'):
        ovseg.masked_crops(images[..., :7], logits, 0.5)


def test_crops_of_a_batch_in_chunks_equal_the_references_one_at_a_time():
    # OVSeg's reference cuts, fills, normalises and resizes each crop on its own; densevl
    # normalises each image once and resizes crops of one size together: the same values
    gen = torch.Generator().manual_seed(2)
    images = torch.rand(2, 3, 24, 20, generator=gen) * 255
    logits = torch.randn(2, 5, 24, 20, generator=gen) * 4 - 6     # scattered pixels
    for b, q, y, x, h, w in [(0, 0, 2, 3, 7, 4), (0, 3, 9, 9, 7, 4), (1, 1, 10, 1, 2, 3),
                             (1, 2, 0, 0, 24, 20)]:                # two boxes of one size
        logits[b, q] = -9.0
        logits[b, q, y:y + h, x:x + w] = 5.0
    logits[1, 4] = -9.0                                            # one empty: no crop
    proposals = ovseg.find_proposals(logits, 0.5)
    sizes = (proposals.boxes[:, 2:] - proposals.boxes[:, :2]).tolist()
    assert proposals.num_crops == 9 and sizes.count([4, 7]) == 2 and len(set(map(tuple, sizes))) > 3
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(3, 1, 1) * 255
    std = torch.tensor(OPENAI_DATASET_STD).view(3, 1, 1) * 255
    for start in range(0, proposals.num_crops, 4):
        chunk = slice(start, start + 4)
        crops, masks = ovseg.crop_proposals(images, proposals, chunk, size=16)
        for i, crop, region in zip(range(9)[chunk], crops, masks):
            x1, y1, x2, y2 = proposals.boxes[i].tolist()
            b, q = proposals.image_index[i], proposals.query_index[i]
            mask = proposals.binary[b, q, y1:y2, x1:x2]
            cut = (torch.where(mask, images[b, :, y1:y2, x1:x2], mean) - mean) / std
            assert torch.equal(crop, F.interpolate(cut[None], size=(16, 16), mode='bicubic',
                                                   align_corners=False)[0])
            assert torch.equal(region, F.interpolate(mask[None, None].float(), size=(16, 16),
                                                     mode='nearest')[0])


def test_no_valid_mask(small):
    images = torch.rand(2, 3, 20, 24) * 255
    logits = torch.full((2, 3, 20, 24), -4.0)
    crops = ovseg.masked_crops(images, logits, 0.4, size=32)
    assert crops.crops.shape == (0, 3, 32, 32) and crops.region_masks.shape == (0, 1, 32, 32)
    assert not crops.valid.any() and crops.boxes.shape == (0, 4)
    embeddings, proposals = ovseg.encode_masked_crops(small, images, logits, 0.4, size=32)
    assert embeddings.shape == (0, 16) and proposals.num_crops == 0
    class_logits = torch.randn(2, 3, 5 + 1)
    crop_logits = torch.empty(0, 5)
    ensemble = ovseg.semantic_inference(class_logits, logits, crop_logits, crops.valid,
                                  clip_ensemble_weight=0.7)
    head = ovseg.head_class_probs(class_logits)
    torch.testing.assert_close(ensemble, ovseg.semantic_map(head ** 0.3, logits))
    clip_only = ovseg.semantic_inference(class_logits, logits, crop_logits, crops.valid,
                                   clip_ensemble_weight=0.0)
    assert clip_only.shape == (2, 5, 20, 24) and not clip_only.any()


def test_one_crop_with_mask_prompts(small):
    crops = torch.randn(1, 3, 32, 32)
    masks = torch.zeros(1, 1, 32, 32)
    masks[..., :16, :16] = 1                        # one of the 2x2 patches touched
    with torch.no_grad():
        prompted, plain = small(crops, masks), small(crops)
        full = small(crops, torch.ones_like(masks))
    assert prompted.shape == (1, 16) and (prompted - plain).abs().max() > 1e-3
    torch.testing.assert_close(full, plain)         # no blank patch: CLIP itself
    assert small.blank_patches(masks)[0, :, 0].tolist() == [False, True, True, True]


def test_mask_embedding_grid_mismatch_is_refused(small):
    state = small.state_dict()
    state['mask_embedding'] = torch.zeros(3, 9, 64)             # a 3x3 grid: 48-px crops
    with pytest.raises(ValueError, match=r'3x3 grid \(48-px crops\)'):
        ovseg.MaskPromptCLIP(_tower(32, 16), depth=3).load_state_dict(state)
    state['mask_embedding'] = torch.zeros(2, 4, 64)
    with pytest.raises(ValueError, match='depth'):
        ovseg.MaskPromptCLIP(_tower(32, 16), depth=3).load_state_dict(state)
    with pytest.raises(ValueError, match=r'masked_crops\(size=32\)'):
        small(torch.randn(2, 3, 48, 48), torch.ones(2, 1, 48, 48))
    with pytest.raises(ValueError, match='depth must be an int from 1 to the 3 blocks'):
        ovseg.MaskPromptCLIP(_tower(32, 16), depth=4)


def test_shared_mask_embedding_broadcasts(small):
    shared = ovseg.MaskPromptCLIP(_tower(32, 16), depth=3).eval()
    one = torch.randn(3, 1, 64, generator=torch.Generator().manual_seed(5))
    shared.load_state_dict({**small.state_dict(), 'mask_embedding': one})
    full = ovseg.MaskPromptCLIP(_tower(32, 16), depth=3).eval()
    full.load_state_dict({**small.state_dict(), 'mask_embedding': one.expand(3, 4, 64)})
    crops, masks = torch.randn(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    masks[0, :, 20:, 20:] = 1
    with torch.no_grad():
        torch.testing.assert_close(shared(crops, masks), full(crops, masks))


def test_head_logits_no_object_last_and_clear_errors():
    head = ovseg.CLIPSpaceClassHead(8, 16, hidden_dim=12)
    text = F.normalize(torch.randn(3, 16), dim=-1)
    vocab = Vocabulary.parse(['cat', 'tv; monitor']).with_embeddings(text)
    queries = torch.randn(2, 4, 8)
    logits = head(queries, vocab)
    assert logits.shape == (2, 4, 3 + 1)
    embedded = F.normalize(head.embed(queries), dim=-1)
    no_object = F.normalize(head.non_object_embedding, dim=-1)
    torch.testing.assert_close(logits[..., -1], 100 * (embedded @ no_object.t())[..., 0])
    probs = ovseg.head_class_probs(logits, vocab)   # synonyms pooled after the softmax
    full = logits.softmax(-1)[..., :-1]
    torch.testing.assert_close(probs, torch.stack([full[..., 0], full[..., 1:].amax(-1)], -1))
    with pytest.raises(ValueError, match='no text embeddings'):
        head(queries, Vocabulary.parse(['cat']))
    with pytest.raises(ValueError, match='L2-normalised'):
        head(queries, vocab.with_embeddings(2 * text))
    with pytest.raises(ValueError, match='embed_dim'):
        head(queries, vocab.with_embeddings(F.normalize(torch.randn(3, 32), dim=-1)))


def test_ensemble_weights_and_invalid_proposals():
    head = torch.rand(1, 3, 4).softmax(-1)
    clip = torch.rand(2, 4).softmax(-1)
    valid = torch.tensor([[True, False, True]])
    mixed = ovseg.ensemble_class_probs(head, clip, valid, 0.45)
    torch.testing.assert_close(mixed[0, 1], head[0, 1] ** 0.55)   # no crop: clip = 1
    torch.testing.assert_close(mixed[0, 2], head[0, 2] ** 0.55 * clip[1] ** 0.45)
    assert torch.equal(ovseg.ensemble_class_probs(head, clip, valid, 1.0)[0, 1], torch.ones(4))
    with pytest.raises(ValueError, match=r'in \[0, 1\]'):
        ovseg.ensemble_class_probs(head, clip, valid, 1.5)
    with pytest.raises(ValueError, match='one per valid proposal'):
        ovseg.ensemble_class_probs(head, clip[:1], valid, 0.7)
    with pytest.raises(ValueError, match='no-object column'):
        ovseg.semantic_inference(torch.randn(1, 3, 5), torch.randn(1, 3, 4, 4), torch.randn(2, 5),
                           valid, clip_ensemble_weight=0.7)
