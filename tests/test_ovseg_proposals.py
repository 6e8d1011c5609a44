"""densevl.models.ovseg.proposals: the proposal interface and SAM's automatic mask generator on a
tiny SAM with random weights, built from segment_anything's own classes (no download)."""
from __future__ import annotations

import sys
from functools import partial

import numpy as np
import pytest
import segment_anything
import torch
from segment_anything import modeling

from densevl.models.ovseg import encode_masked_crops, find_proposals, masked_crops
from densevl.models.ovseg import proposals as props

# Permissive filters: random weights predict low IoUs; NMS at 1.0 keeps every distinct mask.
OPTIONS = dict(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0,
               box_nms_thresh=1.0)


def _tiny_sam(img_size: int = 64, seed: int = 0) -> modeling.Sam:
    dim = 16
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return modeling.Sam(
            image_encoder=modeling.ImageEncoderViT(
                img_size=img_size, patch_size=16, embed_dim=32, depth=1, num_heads=2,
                mlp_ratio=2.0, out_chans=dim, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)),
            prompt_encoder=modeling.PromptEncoder(
                embed_dim=dim, image_embedding_size=(img_size // 16, img_size // 16),
                input_image_size=(img_size, img_size), mask_in_chans=4),
            mask_decoder=modeling.MaskDecoder(
                transformer_dim=dim, num_multimask_outputs=3, iou_head_depth=2,
                iou_head_hidden_dim=16,
                transformer=modeling.TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=32,
                                                       num_heads=2)),
        ).eval()


@pytest.fixture(scope='module')
def tiny_sam() -> modeling.Sam:
    return _tiny_sam()


@pytest.fixture(scope='module')
def images() -> torch.Tensor:
    return torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(0)) * 255


# ----- conversion ---------------------------------------------------------------------------

def test_binary_masks_survive_every_threshold():
    gen = torch.Generator().manual_seed(1)
    binary = torch.rand(5, 7, 9, generator=gen) > 0.6
    binary[3] = False                               # an empty mask stays invalid
    logits = props.binary_masks_to_logits(binary.numpy())
    assert logits.dtype == torch.float32 and logits.shape == (5, 7, 9)
    assert set(logits.unique().tolist()) <= {-props.MASK_LOGIT, props.MASK_LOGIT}
    for threshold in (0.0, 1e-30, 0.4, 0.5, 1 - 1e-7):
        proposals = find_proposals(logits[None], threshold)
        assert torch.equal(proposals.binary[0], binary), threshold
        assert proposals.valid[0].tolist() == [True, True, True, False, True]
    # exact 0 / 1 after the sigmoid, in fp32, and finite in fp16
    assert logits.sigmoid().unique().tolist() == [0.0, 1.0]
    assert torch.isfinite(logits.half()).all()
    assert torch.equal(props.binary_masks_to_logits(binary.to(torch.uint8)), logits)
    with pytest.raises(ValueError, match='binary'):
        props.binary_masks_to_logits(torch.rand(2, 3, 3))
    with pytest.raises(ValueError, match=r'\(N, H, W\)'):
        props.binary_masks_to_logits(binary[0])


def test_proposal_set_and_stacking():
    a = props.ProposalSet(props.binary_masks_to_logits(torch.ones(2, 4, 6, dtype=torch.bool)),
                    torch.tensor([0.9, 0.5]))
    b = props.ProposalSet(torch.zeros(0, 4, 6))
    assert a.num_proposals == 2 and a.image_size == (4, 6) and b.num_proposals == 0
    stacked = props.stack_proposals([a, b], num_queries=3)
    assert stacked.shape == (2, 3, 4, 6)
    assert find_proposals(stacked, 0.0).valid.tolist() == [[True, True, False],
                                                            [False, False, False]]
    assert props.stack_proposals([b, b]).shape == (2, 0, 4, 6)
    with pytest.raises(ValueError, match='num_queries=1 is smaller'):
        props.stack_proposals([a], num_queries=1)
    with pytest.raises(ValueError, match='different sizes'):
        props.stack_proposals([a, props.ProposalSet(torch.zeros(1, 5, 6))])
    with pytest.raises(ValueError, match='binary_masks_to_logits'):
        props.ProposalSet(torch.ones(2, 4, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match='one value per proposal'):
        props.ProposalSet(torch.zeros(2, 4, 6), torch.zeros(3))


# ----- SAM ----------------------------------------------------------------------------------

def test_sam_generator_end_to_end(tiny_sam, images):
    generator = props.SAMProposalGenerator.from_sam_model(tiny_sam, max_proposals=5, **OPTIONS)
    assert isinstance(generator, props.MaskProposalGenerator)
    with torch.no_grad():
        sets = generator(images)
    assert len(sets) == 2
    for proposal_set in sets:
        n = proposal_set.num_proposals
        assert n <= 5 and proposal_set.image_size == (48, 64)
        assert proposal_set.mask_logits.dtype == torch.float32
        assert proposal_set.scores.shape == (n,) and proposal_set.scores.dtype == torch.float32
        binary = {-props.MASK_LOGIT, props.MASK_LOGIT}
        assert set(proposal_set.mask_logits.unique().tolist()) <= binary
        assert proposal_set.scores.tolist() == sorted(proposal_set.scores.tolist(), reverse=True)
    # the proposals are SAM's own best masks, in its predicted-IoU order
    records = generator.generator.generate(
        images[1].round().to(torch.uint8).permute(1, 2, 0).numpy())
    best = sorted(records, key=lambda r: -r['predicted_iou'])[:5]
    assert sets[1].scores.tolist() == pytest.approx([r['predicted_iou'] for r in best])
    for logits, record in zip(sets[1].mask_logits, best):
        assert torch.equal(logits > 0, torch.from_numpy(record['segmentation']))
    # a sequence of images of different sizes
    sizes = [s.image_size for s in generator([images[0], images[1, :, :40, :56]])]
    assert sizes == [(48, 64), (40, 56)]


def test_sam_proposals_feed_the_masked_crops(tiny_sam, images):
    generator = props.SAMProposalGenerator.from_sam_model(tiny_sam, max_proposals=4, **OPTIONS)
    with torch.no_grad():
        sets = generator(images)
    logits = props.stack_proposals(sets, num_queries=4)
    crops = masked_crops(images, logits, 0.5, size=32)
    expected = [[i < s.num_proposals and bool((s.mask_logits[i] > 0).any()) for i in range(4)]
                for s in sets]
    assert crops.valid.tolist() == expected
    n = int(crops.valid.sum())
    assert crops.crops.shape == (n, 3, 32, 32) and crops.region_masks.shape == (n, 1, 32, 32)
    for box, b, q in zip(crops.boxes.tolist(), crops.image_index.tolist(),
                         crops.query_index.tolist()):
        ys, xs = (sets[b].mask_logits[q] > 0).nonzero(as_tuple=True)
        assert box == [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    embeddings, proposals = encode_masked_crops(lambda c, m: c.mean(dim=(2, 3)), images,
                                                logits, 0.5, size=32, chunk_size=3)
    assert embeddings.shape == (n, 3) and torch.equal(proposals.valid, crops.valid)


def test_sam_generator_from_a_checkpoint(tiny_sam, tmp_path, monkeypatch, images):
    path = tmp_path / 'tiny_sam.pth'
    torch.save(tiny_sam.state_dict(), path)

    def build_tiny(checkpoint=None):
        sam = _tiny_sam(seed=1)
        if checkpoint is not None:
            sam.load_state_dict(torch.load(checkpoint, weights_only=True))
        return sam

    monkeypatch.setitem(segment_anything.sam_model_registry, 'vit_b', build_tiny)
    generator = props.SAMProposalGenerator(path, 'vit_b', max_proposals=3, **OPTIONS)
    for key, value in tiny_sam.state_dict().items():
        assert torch.equal(generator.model.state_dict()[key], value)
    with torch.no_grad():
        reference = props.SAMProposalGenerator.from_sam_model(tiny_sam, max_proposals=3, **OPTIONS)
        for ours, theirs in zip(generator(images), reference(images)):
            assert torch.equal(ours.mask_logits, theirs.mask_logits)
    wrong = tmp_path / 'other.pth'
    torch.save({'image_encoder.pos_embed': torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="does not fit SAM model type 'vit_b'"):
        props.SAMProposalGenerator(wrong, 'vit_b')


def test_sam_errors(tiny_sam, tmp_path, monkeypatch):
    missing = tmp_path / 'sam_vit_h_4b8939.pth'
    with pytest.raises(FileNotFoundError, match=r'sam_vit_h_4b8939\.pth.*segment-anything'):
        props.SAMProposalGenerator(missing)
    with pytest.raises(ValueError, match="unknown SAM model type 'vit_x'.*vit_b"):
        props.SAMProposalGenerator(missing, 'vit_x')
    with pytest.raises(ValueError, match='max_proposals'):
        props.SAMProposalGenerator.from_sam_model(tiny_sam, max_proposals=0)
    with pytest.raises(ValueError, match="output_mode='binary_mask'"):
        props.SAMProposalGenerator.from_sam_model(tiny_sam, output_mode='coco_rle')
    with pytest.raises(TypeError, match="unknown SamAutomaticMaskGenerator option.*points_per_"):
        props.SAMProposalGenerator.from_sam_model(tiny_sam, points_per_sid=4)
    generator = props.SAMProposalGenerator.from_sam_model(tiny_sam, **OPTIONS)
    with pytest.raises(ValueError, match='0-255 scale'):
        generator(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match='add the batch dimension'):
        generator(torch.zeros(3, 16, 16))
    monkeypatch.setitem(sys.modules, 'segment_anything', None)
    with pytest.raises(ImportError, match='pip install segment-anything'):
        props.SAMProposalGenerator(missing)


def test_empty_image_result_has_the_right_shapes(tiny_sam):
    # every mask filtered out (SAM's IoU head is unbounded): zero proposals, at the image's size
    generator = props.SAMProposalGenerator.from_sam_model(tiny_sam, points_per_side=2,
                                                    pred_iou_thresh=1e9)
    (proposal_set,) = generator(torch.full((1, 3, 20, 24), 128.0))
    assert proposal_set.mask_logits.shape == (0, 20, 24)
    assert proposal_set.scores.shape == (0,)
    crops = masked_crops(torch.zeros(1, 3, 20, 24), props.stack_proposals([proposal_set]), 0.5,
                         size=32)
    assert crops.crops.shape == (0, 3, 32, 32) and np.array_equal(crops.valid.shape, (1, 0))
