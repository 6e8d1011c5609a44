"""The open-vocabulary Faster R-CNN (configs/ovdet): its text classifier, names at call time,
tools/train.py and tools/test.py --texts, and OpenVocabDetInferencer with texts.

The proving ground's config with random weights of the tiny CLIP's architecture (nothing is
downloaded; the packaged weights may be absent) and a memory-only text cache.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope

import densevl.models.mm_adapters  # noqa: F401 - registers the detectors
from densevl.models.clip.model_zoo import SYNTHETIC_CONFIGS
from densevl.models.detectors import TextEmbeddingBBoxHead
from densevl.models.text import Vocabulary
from densevl.registry import DET_MODELS

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'configs/ovdet/ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128.py'


def run_tool(relative: str, argv: list[str]) -> None:
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(argv)


def head_with_vocabulary() -> tuple[TextEmbeddingBBoxHead, Vocabulary]:
    init_default_scope('mmdet')
    torch.manual_seed(0)
    head = TextEmbeddingBBoxHead(embed_dim=12, temperature=20.0, in_channels=8,
                                 fc_out_channels=16, roi_feat_size=7, num_classes=1)
    vocab = Vocabulary.parse(['red', 'pink; rose', 'blue']).with_embeddings(torch.randn(4, 12))
    return head, vocab


def test_head_logits_are_cosine_times_temperature_with_background_last():
    head, vocab = head_with_vocabulary()
    regions = torch.randn(5, 8, 7, 7)
    with head.vocabulary(vocab):
        assert head.num_classes == 3
        cls_score, bbox_pred = head(regions)
    assert head.num_classes == 1  # restored
    projected = F.normalize(super(TextEmbeddingBBoxHead, head).forward(regions)[0], dim=-1)
    cos = projected @ F.normalize(vocab.embeddings, dim=-1).T          # (5, 4 queries)
    classes = torch.stack([cos[:, 0], cos[:, 1:3].max(1).values, cos[:, 3]], dim=1)
    background = projected @ F.normalize(head.bg_embedding, dim=0)
    expected = 20.0 * torch.cat([classes, background[:, None]], dim=1)
    assert cls_score.shape == (5, 4) and bbox_pred.shape == (5, 4)
    torch.testing.assert_close(cls_score, expected)


def test_head_refuses_wrong_width_and_missing_vocabulary():
    head, _ = head_with_vocabulary()
    with pytest.raises(RuntimeError, match='no vocabulary'):
        head(torch.randn(2, 8, 7, 7))
    with pytest.raises(ValueError, match='12-d'):
        with head.vocabulary(Vocabulary.parse(['a']).with_embeddings(torch.randn(1, 7))):
            pass


@pytest.fixture(scope='module')
def clip_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('clip') / 'clip.pth'
    torch.manual_seed(0)
    torch.save(open_clip.CLIP(**SYNTHETIC_CONFIGS['vit']['config']).state_dict(), path)
    return path


def tiny_config(clip_weights: Path) -> Config:
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.clip.pretrained = str(clip_weights)
    cfg.model.text = dict(templates=('{}', ), cache_dir=False)
    cfg.model.test_cfg.rcnn.score_thr = 0.0   # random heads: keep boxes to count and evaluate
    return cfg


def test_detects_any_names_given_at_call_time(clip_weights):
    init_default_scope('mmdet')
    model = DET_MODELS.build(tiny_config(clip_weights).model).eval()
    images = torch.rand(1, 3, 128, 128) * 255
    sample = DetDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128),
                                         scale_factor=(1.0, 1.0)))
    with torch.no_grad():
        for texts in (['pink', 'purple'], ['red', 'orange', 'a teal cube; cyan', 'white', 'sky']):
            found = model.predict(images, [sample], texts=texts)[0].pred_instances
            assert len(found) > 0 and int(found.labels.max()) < len(texts)
    with pytest.raises(ValueError, match='no names to detect'):
        model.predict(images, [sample])
    model.class_names = ['pink', 'grass']
    assert model.vocabulary().num_classes == 2


@pytest.fixture(scope='module')
def trained(tmp_path_factory, clip_weights) -> tuple[Path, Path, Path]:
    """A 2-iteration tools/train.py run on a tiny synthetic dataset, its test config and data."""
    from densevl.datasets.synthetic import write_dataset

    tmp = tmp_path_factory.mktemp('ovdet')
    data = write_dataset(tmp / 'synthetic', counts=dict(train=8, test=4), progress=False)
    cfg = tiny_config(clip_weights)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(batch_size=4, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = f'{data}/'
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        evaluator.ann_file = str(data / 'coco' / 'instances_test.json')
    cfg.train_dataloader.dataset.filter_cfg = dict(filter_empty_gt=True, min_size=0)
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.update(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
                             logger=dict(type='LoggerHook', interval=1))
    train_config, test_config = tmp / 'ovdet_train.py', tmp / 'ovdet_test.py'
    cfg.dump(train_config)
    cfg.dump(test_config)
    work = tmp / 'work'
    run_tool('tools/train.py', [str(train_config), '--work-dir', str(work)])
    return work / 'iter_2.pth', test_config, data


def test_train_then_test_tool_with_texts(trained):
    checkpoint, test_config, _ = trained
    assert checkpoint.is_file()
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    assert 'roi_head.bbox_head.bg_embedding' in state
    assert not any(k.startswith('backbone.transformer') for k in state)  # text tower stays out
    out = checkpoint.parent / 'test'
    names = 'red,orange,yellow,green,blue,purple,pink,white'
    run_tool('tools/test.py', [str(test_config), str(checkpoint), '--work-dir', str(out),
                               '--texts', names])
    log = ''.join(p.read_text() for p in out.glob('*/*.log'))
    assert 'coco/bbox_mAP' in log


def test_inferencer_with_texts(trained, tmp_path):
    from densevl.apis import OpenVocabDetInferencer

    checkpoint, test_config, data = trained
    det = OpenVocabDetInferencer(str(test_config), str(checkpoint), device='cpu')
    image = next((data / 'images' / 'test').glob('*.jpg'))
    out = det(str(image), texts=['pink', 'purple', 'grass'], score_threshold=0.0,
              out_dir=tmp_path)
    prediction = out['predictions'][0]
    assert prediction.texts == ['pink', 'purple', 'grass']
    assert len(prediction.boxes) > 0 and int(prediction.labels.max()) < 3
    assert bool((prediction.scores[:-1] >= prediction.scores[1:]).all())
    assert np.asarray(out['visualization'][0]).ndim == 3 and any(tmp_path.iterdir())
