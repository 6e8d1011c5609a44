"""The open-vocabulary Faster R-CNN (configs/ovdet): its text classifier, names at call time,
tools/train.py and tools/test.py --texts, OpenVocabDetInferencer with texts, and the optional
ViLD-image ensemble (CLIP on the proposals' crops).

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
from mmdet.models.detectors import TwoStageDetector
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import Tensor

import densevl.models.mm_adapters  # noqa: F401 - registers the detectors
from densevl.models.clip.model_zoo import SYNTHETIC_CONFIGS
from densevl.models.detectors import TextEmbeddingBBoxHead
from densevl.models.detectors.vild_image_ensemble import (
    ViLDImageEnsemble,
    crop_boxes,
    vild_ensemble,
)
from densevl.models.text import Vocabulary
from densevl.registry import DET_MODELS

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'configs/ovdet/ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128.py'
ENSEMBLE_CONFIG = (ROOT / 'configs/ovdet/'
                   'ovdet-faster-rcnn-vild-image_clip-synthetic-tiny_800it_synthetic-128.py')


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


def tiny_config(clip_weights: Path, config: Path = CONFIG) -> Config:
    cfg = Config.fromfile(config)
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
    assert state['_extra_state'] == {'train_classes': ['red', 'orange', 'yellow', 'green',
                                                       'blue', 'white']}   # the seen colours
    assert not any(k.startswith('backbone.transformer') for k in state)  # text tower stays out
    out = checkpoint.parent / 'test'
    names = 'red,orange,yellow,green,blue,purple,pink,white'
    run_tool('tools/test.py', [str(test_config), str(checkpoint), '--work-dir', str(out),
                               '--texts', names])
    log = ''.join(p.read_text() for p in out.glob('*/*.log'))
    assert 'coco/bbox_mAP' in log


def test_checkpoint_from_before_the_recorded_vocabulary_loads(trained, tmp_path):
    """Checkpoints trained before the training vocabulary was recorded (no ``_extra_state``)
    load strictly, as the inferencer and GroundVLP's detector slot load them."""
    from densevl.apis import OpenVocabDetInferencer

    checkpoint, test_config, _ = trained
    old = torch.load(checkpoint, map_location='cpu', weights_only=False)
    del old['state_dict']['_extra_state']
    torch.save(old, tmp_path / 'old.pth')
    det = OpenVocabDetInferencer(str(test_config), str(tmp_path / 'old.pth'), device='cpu')
    assert det.model.train_classes is None
    state = det.model.state_dict()
    assert torch.equal(state['roi_head.bbox_head.bg_embedding'],
                       old['state_dict']['roi_head.bbox_head.bg_embedding'])


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


# --- the ViLD-image ensemble -------------------------------------------------------------------

def test_vild_ensemble_weights_text_on_base_and_clip_on_novel():
    text = torch.tensor([[0.6, 0.1, 0.2], [0.05, 0.8, 0.1]])
    image = torch.tensor([[0.2, 0.5, 0.3], [0.7, 0.1, 0.2]])
    is_base = torch.tensor([True, False, True])
    out = vild_ensemble(text, image, is_base, weight=2 / 3)
    # base: text^(2/3) image^(1/3); novel: text^(1/3) image^(2/3) (ViLD, lambda = 2/3); the
    # reference writes both as the cube root of text * image * (text on base, image on novel)
    expected = torch.stack([(text[:, 0] ** 2 * image[:, 0]) ** (1 / 3),
                            (text[:, 1] * image[:, 1] ** 2) ** (1 / 3),
                            (text[:, 2] ** 2 * image[:, 2]) ** (1 / 3)], dim=1)
    torch.testing.assert_close(out, expected)
    assert float(out[0, 0]) == pytest.approx(0.6 ** (2 / 3) * 0.2 ** (1 / 3))
    assert float(out[0, 1]) == pytest.approx(0.1 ** (1 / 3) * 0.5 ** (2 / 3))
    torch.testing.assert_close(vild_ensemble(text, image, is_base, weight=1.0),
                               torch.where(is_base, text, image))


COLOURS = torch.eye(3)   # red, green, blue regions of a black image
REGIONS = torch.tensor([[4., 4., 20., 12.], [30., 8., 38., 40.], [10., 44., 50., 60.]])


def coloured_image() -> Tensor:
    image = torch.zeros(1, 3, 64, 64)
    for (x1, y1, x2, y2), colour in zip(REGIONS.long().tolist(), COLOURS):
        image[0, :, y1:y2, x1:x2] = colour[:, None, None]
    return image


def test_crops_come_from_the_box_regions():
    image = coloured_image()
    rois = torch.cat([torch.zeros(3, 1), REGIONS], dim=1)
    crops = crop_boxes(torch.cat([torch.zeros_like(image), image]), rois + torch.tensor(
        [1., 0, 0, 0, 0]), (8, 8))                         # batch index 1: the coloured image
    torch.testing.assert_close(crops, COLOURS[:, :, None, None].expand(3, 3, 8, 8))
    wide = crop_boxes(image, rois, (12, 12), scale=1.5)    # the 1.5x crop shows the context
    inner = wide[:, :, 3:9, 3:9]
    torch.testing.assert_close(inner, COLOURS[:, :, None, None].expand(3, 3, 6, 6))
    assert bool((wide[:, :, 0, 0] == 0).all())            # a corner outside the box: black


def test_image_scores_name_the_colour_of_each_crop(clip_weights):
    ensemble = ViLDImageEnsemble(clip=dict(model_name='clip-synthetic-tiny',
                                           pretrained=str(clip_weights)), temperature=50.0)
    assert ensemble.input_size == (64, 64) and ensemble.crop_scales == (1.0, 1.5)
    seen = []
    def mean_colour(crops):   # a stand-in tower: the crop's mean colour as its embedding
        seen.append(crops.shape)
        return crops.mean(dim=(2, 3))
    ensemble.visual = mean_colour
    vocab = Vocabulary.parse(['green', 'blue; navy', 'red']).with_embeddings(
        torch.stack([COLOURS[1], COLOURS[2], COLOURS[2], COLOURS[0]]))
    rois = torch.cat([torch.zeros(3, 1), REGIONS], dim=1)
    probs = ensemble.image_probs(coloured_image(), rois, vocab)
    assert seen == [(3, 3, 64, 64)] * 2                  # the 1x and 1.5x crops, batched
    assert probs.argmax(1).tolist() == [2, 0, 1] and bool((probs.max(1).values > 0.9).all())
    assert ensemble.is_base(vocab, ['Red', 'navy']).tolist() == [False, True, True]
    text_probs = torch.full((3, 4), 0.25)
    out = ensemble(coloured_image(), rois, text_probs, vocab, torch.tensor([True, False, True]))
    torch.testing.assert_close(out[:, -1], text_probs[:, -1])   # background passed on
    torch.testing.assert_close(out[:, :3], vild_ensemble(text_probs[:, :3], probs,
                                                         torch.tensor([True, False, True])))


def sample_128() -> DetDataSample:
    return DetDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128),
                                       scale_factor=(1.0, 1.0)))


def test_ensemble_off_is_the_text_head_alone(clip_weights):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = DET_MODELS.build(tiny_config(clip_weights).model).eval()
    assert model.image_ensemble is None
    images = torch.rand(1, 3, 128, 128) * 255
    texts = ['pink', 'purple', 'red']
    with torch.no_grad():
        found = model.predict(images, [sample_128()], texts=texts)[0].pred_instances
        with model.roi_head.bbox_head.vocabulary(model.vocabulary(texts)):   # mmdet's path
            plain = TwoStageDetector.predict(model, images, [sample_128()])[0].pred_instances
    for key in ('bboxes', 'scores', 'labels'):
        assert torch.equal(found[key], plain[key])


def test_ensemble_on_rescores_the_proposals(clip_weights):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = DET_MODELS.build(tiny_config(clip_weights, ENSEMBLE_CONFIG).model).eval()
    assert model.image_ensemble.base_classes == ['red', 'orange', 'yellow', 'green', 'blue',
                                                 'white']
    assert not any('visual' in k and 'backbone' not in k for k in model.state_dict())
    images = torch.rand(1, 3, 128, 128) * 255
    texts = ['pink', 'purple', 'red']
    calls = []
    ensemble = model.image_ensemble
    def spy(*args, **kwargs):
        calls.append(kwargs['is_base'].tolist())
        return ViLDImageEnsemble.__call__(ensemble, *args, **kwargs)
    model.image_ensemble = spy
    spy.base_classes, spy.is_base = ensemble.base_classes, ensemble.is_base
    with torch.no_grad():
        found = model.predict(images, [sample_128()], texts=texts)[0].pred_instances
    assert calls == [[False, False, True]]
    assert len(found) > 0 and int(found.labels.max()) < 3
    model.image_ensemble = ensemble
    ensemble.base_classes = None                   # nothing recorded, nothing configured
    with pytest.raises(ValueError, match='base'):
        model.predict(images, [sample_128()], texts=texts)
    model.train_classes = ['pink']                 # recorded by training
    with torch.no_grad():
        assert len(model.predict(images, [sample_128()], texts=texts)[0].pred_instances) > 0


def test_ensemble_refuses_a_non_clip_normalisation(clip_weights):
    init_default_scope('mmdet')
    cfg = tiny_config(clip_weights, ENSEMBLE_CONFIG)
    cfg.model.data_preprocessor.update(mean=[0, 0, 0], std=[1, 1, 1])
    with pytest.raises(ValueError, match="CLIP's mean and std"):
        DET_MODELS.build(cfg.model)


def test_inferencer_with_the_ensemble(trained, tmp_path):
    from densevl.apis import OpenVocabDetInferencer

    checkpoint, test_config, data = trained
    cfg = Config.fromfile(test_config)
    cfg.model.image_ensemble = dict(weight=2 / 3)    # base: the classes the checkpoint records
    config = tmp_path / 'ovdet_vild_image.py'
    cfg.dump(config)
    det = OpenVocabDetInferencer(str(config), str(checkpoint), device='cpu')
    assert det.model.train_classes == ['red', 'orange', 'yellow', 'green', 'blue', 'white']
    image = next((data / 'images' / 'test').glob('*.jpg'))
    out = det(str(image), texts=['pink', 'purple', 'red'], score_threshold=0.0)
    prediction = out['predictions'][0]
    assert len(prediction.boxes) > 0 and int(prediction.labels.max()) < 3
    assert bool((prediction.scores[:-1] >= prediction.scores[1:]).all())
