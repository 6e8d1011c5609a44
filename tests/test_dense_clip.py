import pytest
import torch
import torch.nn.functional as F
from conftest import make_tiny_vit

from densevl.models.clip import (
    CLIPDenseResNet,
    CLIPDenseViT,
    build_dense_encoder,
    resize_vit_pos_embed,
    score_map,
)
from densevl.models.clip.last_block import neighbourhood_prior

MODES = ('plain', 'maskclip', 'sclip', 'clearclip', 'naclip')


@torch.no_grad()
def test_plain_mode_is_open_clip_forward(tiny_vit):
    images = torch.randn(2, 3, 64, 64)
    out = CLIPDenseViT(tiny_vit.visual).forward_dense(images, 'plain')
    tiny_vit.visual.output_tokens = True
    pooled, tokens = tiny_vit.visual(images)
    assert torch.allclose(out.global_embedding, pooled, atol=1e-6)
    assert torch.allclose(out.dense.flatten(2).transpose(1, 2), tokens @ tiny_vit.visual.proj,
                          atol=1e-6)


@torch.no_grad()
def test_maskclip_is_the_value_path(tiny_vit):
    visual = tiny_vit.visual
    encoder = CLIPDenseViT(visual)
    images = torch.randn(1, 3, 64, 64)
    x, _ = encoder.embed_patches(images)
    for block in visual.transformer.resblocks[:-1]:
        x = block(x)
    last = visual.transformer.resblocks[-1]
    dim = x.shape[-1]
    v = F.linear(last.ln_1(x), last.attn.in_proj_weight[2 * dim:], last.attn.in_proj_bias[2 * dim:])
    expected = visual.ln_post(last.attn.out_proj(v)) @ visual.proj
    got = encoder.forward_dense(images, 'maskclip').dense.flatten(2).transpose(1, 2)
    assert torch.allclose(got, expected[:, 1:], atol=1e-6)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('size', [(64, 64), (80, 112), (47, 33)])
@torch.no_grad()
def test_every_mode_any_size(tiny_vit, mode, size):
    out = CLIPDenseViT(tiny_vit.visual).forward_dense(torch.randn(2, 3, *size), mode)
    assert out.dense.shape == (2, 32, size[0] // 16, size[1] // 16)
    assert out.global_embedding.shape == (2, 32)
    assert torch.isfinite(out.dense).all()


@torch.no_grad()
def test_modes_differ_from_each_other(tiny_vit):
    images = torch.randn(1, 3, 64, 64)
    encoder = CLIPDenseViT(tiny_vit.visual)
    dense = {m: encoder.forward_dense(images, m).dense for m in MODES}
    for a in MODES:
        for b in MODES:
            if a < b:
                assert not torch.allclose(dense[a], dense[b]), (a, b)


@torch.no_grad()
def test_multi_level_features(tiny_vit):
    model = make_tiny_vit(layers=12, width=64)
    out = CLIPDenseViT(model.visual).forward_dense(torch.randn(1, 3, 64, 64), return_features=True)
    assert len(out.features) == 4 and all(f.shape == (1, 64, 4, 4) for f in out.features)


def test_image_smaller_than_a_patch_is_refused(tiny_vit):
    with pytest.raises(ValueError, match='smaller than one 16x16 patch'):
        CLIPDenseViT(tiny_vit.visual).forward_dense(torch.randn(1, 3, 8, 64))


def test_unknown_mode_names_the_choices(tiny_vit):
    with pytest.raises(ValueError, match='choose one of plain, maskclip'):
        CLIPDenseViT(tiny_vit.visual, mode='gem')


def test_pos_embed_resize():
    pos = torch.randn(1 + 16, 8)
    assert resize_vit_pos_embed(pos, (4, 4)) is pos
    resized = resize_vit_pos_embed(pos, (3, 7))
    assert resized.shape == (1 + 21, 8)
    assert torch.equal(resized[0], pos[0])


def test_naclip_prior():
    prior = neighbourhood_prior((3, 4), std=5.0)
    assert prior.shape == (13, 13)
    assert torch.all(prior[0] == 0) and torch.all(prior[:, 0] == 0)
    assert torch.allclose(prior[1:, 1:].diagonal(), torch.ones(12))
    assert torch.allclose(prior, prior.T)
    # patches (0, 0) and (0, 1) are one apart: exp(-1 / 50)
    assert prior[1, 2].item() == pytest.approx(torch.exp(torch.tensor(-1 / 50)).item())


@torch.no_grad()
def test_resnet_modes(tiny_resnet):
    encoder = build_dense_encoder(tiny_resnet.visual, mode='plain')
    assert isinstance(encoder, CLIPDenseResNet)
    images = torch.randn(2, 3, 64, 64)
    out = encoder.forward_dense(images, return_features=True)
    assert torch.allclose(out.global_embedding, tiny_resnet.visual(images), atol=1e-5)
    assert out.dense.shape == (2, 32, 2, 2) and len(out.features) == 4
    other = encoder.forward_dense(torch.randn(1, 3, 96, 160), 'maskclip')
    assert other.dense.shape == (1, 32, 3, 5)
    with pytest.raises(ValueError, match='ViT image towers only'):
        encoder.forward_dense(images, 'sclip')


def test_score_map_is_scaled_cosine():
    dense, text = torch.randn(2, 8, 3, 5), torch.randn(4, 8)
    got = score_map(dense, text, logit_scale=10.0)
    expected = 10.0 * F.cosine_similarity(dense[:, None], text[None, :, :, None, None], dim=2)
    assert got.shape == (2, 4, 3, 5)
    assert torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError, match='same CLIP model'):
        score_map(dense, torch.randn(4, 9))


@pytest.mark.parametrize('mode', MODES)
@torch.no_grad()
def test_skipping_the_global_embedding_keeps_the_dense_output(tiny_vit, mode):
    encoder = CLIPDenseViT(tiny_vit.visual)
    images = torch.randn(1, 3, 64, 80)
    full = encoder.forward_dense(images, mode)
    lean = encoder.forward_dense(images, mode, return_global=False)
    assert lean.global_embedding is None
    assert torch.equal(full.dense, lean.dense)
