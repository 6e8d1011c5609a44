"""Mask adaptation of OVSeg's CLIP: noun phrases, region crops, the region–text loss, the tuner
(fine-tuning and mask prompt tuning), and the mining and training tools end to end."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _tools import load_tool
from mmengine.config import Config
from PIL import Image
from test_ovseg_segmentor import TINY, tiny_zoo  # noqa: F401  (its 32-px tiny CLIP)

import densevl.datasets.mm_datasets  # noqa: F401
import densevl.models.mm_adapters  # noqa: F401
from densevl.datasets.region_text import RegionTextDataset, read_region_text_table
from densevl.models.clip import create_clip
from densevl.models.ovseg import OVSegCLIP
from densevl.models.ovseg.region_nouns import (
    FILL_RGB,
    match_nouns,
    noun_phrases,
    region_crop,
    region_mask_of,
)
from densevl.models.ovseg.region_text_tuning import RegionTextTuner, region_text_loss
from densevl.registry import SEG_MODELS

ROOT = Path(__file__).resolve().parents[1]
OVSEG_CONFIG = ROOT / 'configs' / 'ovseg' / 'ovseg_clip-synthetic-tiny_400it_synthetic-64.py'
MPT_CONFIG = ROOT / 'configs' / 'ovseg' / 'clip-mpt_clip-synthetic-tiny_5ep_region-nouns.py'
FT_CONFIG = ROOT / 'configs' / 'ovseg' / 'clip-finetune_clip-synthetic-tiny_5ep_region-nouns.py'


@pytest.fixture(scope='module')
def tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp('clip') / 'tiny.pth'
    torch.save(create_clip(TINY).model.state_dict(), path)
    return str(path)


# ----- nouns, crops ----------------------------------------------------------------------------

@pytest.mark.parametrize('caption, expected', [
    ('a picture of a small yellow star, a large blue dotted square and a green ring in the '
     'center on wood', ['small yellow star', 'large blue dotted square', 'green ring', 'wood']),
    ('a sky background with a large green heart at the bottom left',
     ['sky background', 'large green heart']),
    ('A man riding a wave on top of a surfboard.', ['man riding wave', 'surfboard']),
    ('the red star and the red star', ['red star']),
    ('in the middle of it', ['it']),
])
def test_noun_phrases(caption, expected):
    assert noun_phrases(caption) == expected


def test_region_crop_round_trips_through_a_png(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    mask = np.zeros((10, 12), bool)
    mask[2:7, 3:5] = True
    mask[4, 8] = True
    image[3, 4] = FILL_RGB            # a region pixel that happens to be the fill colour
    crop = region_crop(image, mask)
    assert crop.shape == (5, 6, 3)    # rows 2-6, columns 3-8
    Image.fromarray(crop).save(tmp_path / 'crop.png')
    read = np.asarray(Image.open(tmp_path / 'crop.png'))
    assert np.array_equal(region_mask_of(read), mask[2:7, 3:9])
    inside = mask[2:7, 3:9]
    assert np.array_equal(read[inside & ~(image[2:7, 3:9] == FILL_RGB).all(-1)],
                          image[2:7, 3:9][inside & ~(image[2:7, 3:9] == FILL_RGB).all(-1)])
    assert (read[~inside] == FILL_RGB).all()
    with pytest.raises(ValueError, match='empty'):
        region_crop(image, np.zeros_like(mask))


def test_each_noun_takes_its_most_similar_region():
    regions = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    nouns = torch.tensor([[0.0, 1.0], [1.0, 0.1], [0.7, 0.7]])
    assert match_nouns(regions, nouns).tolist() == [1, 0, 2]
    assert match_nouns(regions[:0], nouns).numel() == 0


# ----- the loss, the tuner ---------------------------------------------------------------------

def test_region_text_loss_is_clips_loss_with_distinct_titles_and_shares_duplicates():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(3, 8, generator=g)
    text = F.normalize(torch.randn(3, 8, generator=g), dim=1)
    logits = 10.0 * F.normalize(images, dim=1) @ text.T
    clip_loss = (F.cross_entropy(logits, torch.arange(3)) +
                 F.cross_entropy(logits.T, torch.arange(3))) / 2
    loss = region_text_loss(images, ['a', 'b', 'c'], text, ['a', 'b', 'c'], 10.0)
    assert torch.allclose(loss, clip_loss)
    # crops 0 and 2 share title 'a': both are positives of 'a', neither is the other's negative
    two = text[:2]
    logits = 10.0 * F.normalize(images, dim=1) @ two.T
    to_text = F.cross_entropy(logits, torch.tensor([0, 1, 0]))
    to_image = -(logits.T.log_softmax(dim=1) * torch.tensor([[0.5, 0, 0.5], [0, 1, 0]])).sum(1)
    expected = (to_text + to_image.mean()) / 2
    assert torch.allclose(region_text_loss(images, ['a', 'b', 'a'], two, ['a', 'b'], 10.0),
                          expected)


def _batch(n: int = 4, size: int = 32):
    g = torch.Generator().manual_seed(1)
    masks = torch.zeros(n, 1, size, size)
    masks[:, :, 4:20, 8:24] = 1
    return dict(inputs=torch.randn(n, 3, size, size, generator=g), region_masks=masks,
                titles=['red star', 'grass', 'red star', 'sky'][:n])


def _step(model: RegionTextTuner, lr: float) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr)
    model.train()
    loss = model(**_batch(), mode='loss')['loss_contrastive']
    loss.backward()
    optimizer.step()


def test_mask_prompt_tuning_trains_the_mask_embedding_alone(tiny_weights, tmp_path):
    model = RegionTextTuner(clip=dict(model_name=TINY, pretrained=tiny_weights),
                            tune='mask_prompts', mask_prompt_depth=2)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ['mask_prompt.mask_embedding']
    before = {k: v.clone() for k, v in model.clip.state_dict().items()}
    _step(model, lr=1.0)
    assert model.mask_prompt.mask_embedding.abs().sum() > 0      # it starts at zero
    assert all(torch.equal(before[k], v) for k, v in model.clip.state_dict().items())
    clip_file, mask_file = model.export(tmp_path)
    assert (clip_file.name, mask_file.name) == ('clip.pth', 'clip.mask_embedding.pth')
    # what OVSeg loads classifies with the tuned prompts
    frozen = OVSegCLIP.create(TINY, str(clip_file), mask_embedding=str(mask_file))
    batch = _batch()
    model.eval()
    with torch.no_grad():
        assert torch.allclose(frozen.mask_prompt(batch['inputs'], batch['region_masks']),
                              model(batch['inputs'], batch['region_masks']), atol=1e-5)
    # and a tuner can start from it
    again = RegionTextTuner(clip=dict(model_name=TINY, pretrained=str(clip_file)),
                            tune='mask_prompts', mask_prompt_depth=2, mask_embedding=mask_file)
    assert torch.equal(again.mask_prompt.mask_embedding, model.mask_prompt.mask_embedding)


def test_fine_tuning_trains_the_image_tower_with_the_text_tower_locked(tiny_weights, tmp_path):
    model = RegionTextTuner(clip=dict(model_name=TINY, pretrained=tiny_weights),
                            tune='image_tower')
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith('clip.visual.') for n in trainable)
    before = {k: v.clone() for k, v in model.clip.state_dict().items()}
    _step(model, lr=0.1)
    after = model.clip.state_dict()
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith('visual.') for k in changed)
    assert [f.name for f in model.export(tmp_path)] == ['clip.pth']
    assert torch.equal(create_clip(TINY, str(tmp_path / 'clip.pth')).model.visual.proj,
                       model.clip.visual.proj)


def test_tuner_errors_name_the_fix(tiny_weights):
    with pytest.raises(ValueError, match="'image_tower'.*'mask_prompts'"):
        RegionTextTuner(clip=dict(model_name=TINY, pretrained=tiny_weights), tune='all')
    with pytest.raises(ValueError, match='set clip.pretrained'):
        RegionTextTuner(clip=dict(model_name=TINY))
    with pytest.raises(ValueError, match='tune mask prompts afterwards'):
        RegionTextTuner(clip=dict(model_name=TINY, pretrained=tiny_weights), tune='image_tower',
                        mask_embedding='x.pth')
    model = RegionTextTuner(clip=dict(model_name=TINY, pretrained=tiny_weights),
                            mask_prompt_depth=2)
    with pytest.raises(ValueError, match='evaluate the tuned CLIP inside OVSeg'):
        model(**_batch(), mode='predict')


def test_region_text_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='mine_region_nouns'):
        read_region_text_table(tmp_path / 'none.csv')
    (tmp_path / 'bad.csv').write_text('path,text\nx.png,red\n')
    with pytest.raises(ValueError, match='columns'):
        read_region_text_table(tmp_path / 'bad.csv')
    (tmp_path / 'missing.csv').write_text('filepath\ttitle\ncrops/x.png\tred\n')
    with pytest.raises(FileNotFoundError, match='1 listed crops are missing'):
        read_region_text_table(tmp_path / 'missing.csv')


# ----- the tools end to end --------------------------------------------------------------------

@pytest.fixture(scope='module')
def synthetic_root(tmp_path_factory):
    from densevl.datasets.synthetic import write_dataset
    return write_dataset(tmp_path_factory.mktemp('synthetic'), counts=dict(train=6, test=2),
                         progress=False)


@pytest.fixture(scope='module')
def mined(synthetic_root, tmp_path_factory):
    """Pairs mined with the proving-ground OVSeg (packaged tiny CLIP, random proposals)."""
    work = tmp_path_factory.mktemp('mined')
    cfg = Config.fromfile(str(OVSEG_CONFIG))
    torch.manual_seed(0)
    model = SEG_MODELS.build(cfg.model)
    model.init_weights()
    torch.save({'state_dict': model.state_dict()}, work / 'ovseg.pth')
    titles = load_tool('mine_region_nouns').main([
        str(OVSEG_CONFIG), str(work / 'ovseg.pth'),
        '--captions', str(synthetic_root / 'coco' / 'captions_train.json'),
        '--images', str(synthetic_root / 'images' / 'train'), '--out', str(work / 'pairs'),
        '--limit', '4'])
    return work / 'pairs', titles


def test_mining_tool_writes_a_crop_per_noun(mined, synthetic_root):
    out, titles = mined
    import json
    data = json.loads((synthetic_root / 'coco' / 'captions_train.json').read_text())
    first = {}
    for ann in data['annotations']:
        first.setdefault(ann['image_id'], ann['caption'])
    expected = [noun for image in data['images'][:4] for noun in noun_phrases(first[image['id']])]
    with (out / 'region_nouns.csv').open() as f:
        rows = list(csv.DictReader(f, delimiter='\t'))
    assert [row['title'] for row in rows] == expected and sum(titles.values()) == len(rows)
    for row in rows:
        crop = np.asarray(Image.open(out / row['filepath']))
        assert crop.dtype == np.uint8 and region_mask_of(crop).any()
    item = RegionTextDataset(str(out / 'region_nouns.csv'), size=64, train=False)[0]
    assert item['inputs'].shape == (3, 64, 64) and item['region_masks'].shape == (1, 64, 64)
    assert item['titles'] == rows[0]['title'] and item['region_masks'].sum() > 0


@pytest.mark.parametrize('config', [MPT_CONFIG, FT_CONFIG], ids=['mpt', 'finetune'])
def test_train_tool_tunes_and_ovseg_loads_the_result(mined, config, tmp_path):
    out, _ = mined
    work = tmp_path / 'work'
    load_tool('train').main([str(config), '--work-dir', str(work), '--cfg-options',
                             f'train_dataloader.dataset.ann_file={out}/region_nouns.csv',
                             'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
                             'train_dataloader.persistent_workers=False',
                             'train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1',
                             'default_hooks.logger.interval=1'])
    assert (work / 'epoch_1.pth').is_file() and (work / 'clip.pth').is_file()
    mpt = config == MPT_CONFIG
    assert (work / 'clip.mask_embedding.pth').is_file() == mpt
    cfg = Config.fromfile(str(OVSEG_CONFIG))
    cfg.model.clip.pretrained = str(work / 'clip.pth')
    cfg.model.clip.mask_embedding = str(work / 'clip.mask_embedding.pth') if mpt else None
    ovseg = SEG_MODELS.build(cfg.model).eval()
    assert (ovseg.frozen_clip.mask_prompt is not None) == mpt
    result = ovseg.segment(torch.randn(1, 3, 64, 64), ['red', 'grass'])[0]
    assert result.labels.shape == (64, 64)
