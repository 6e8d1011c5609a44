"""DenseCLIP RetinaNet / Mask R-CNN on mmdet: configs, losses, checkpoints, inferencer, tools.

Tiny random CLIPs (``clip-tiny-random-rn``, a ModifiedResNet; the synthetic config's own ViT) and
narrow necks and heads keep every model small; nothing is downloaded. The published key layout
is checked against the reference's own module names recorded in ``tests/golden/denseclip.pt``.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from PIL import Image

from densevl.models.clip.model_zoo import SYNTHETIC_CONFIGS
from densevl.models.denseclip import box_score_map_loss, rasterise_box_targets
from densevl.models.denseclip.det_checkpoint import (
    compare_state_dict,
    convert_det_state_dict,
    to_published_layout,
)
from densevl.registry import DET_MODELS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / 'configs' / 'denseclip').glob('*.py')
                 if p.name.startswith(('retinanet', 'mask-rcnn')))
RETINANET = ROOT / 'configs/denseclip/retinanet_denseclip_r50_1x_coco.py'
MASK_RCNN = ROOT / 'configs/denseclip/mask-rcnn_denseclip_r50_1x_coco.py'
SYNTHETIC = ROOT / 'configs' / 'denseclip' / \
    'retinanet_denseclip_clip-synthetic-tiny_800it_synthetic-128.py'
GOLDEN = ROOT / 'tests' / 'golden' / 'denseclip.pt'
NAMES = ['red', 'blue', 'green']


def load_script(relative: str):
    """A script of the repository (tools/, demo/) as a module, to call its ``main``."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny(path: Path, num_classes: int | None = len(NAMES), class_names=NAMES) -> Config:
    """The config with a tiny random ModifiedResNet CLIP and 32-channel neck and heads."""
    cfg = Config.fromfile(path)
    m = cfg.model
    if m.backbone.clip.model_name.startswith('RN'):
        m.backbone.clip = dict(model_name='clip-tiny-random-rn', pretrained=None)
        m.backbone.input_resolution = 256
        for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
            for step in loader.dataset.pipeline:
                if step.type == 'Resize':  # within the 256-pixel positional grid
                    step.scale = (256, 160)
    m.backbone.context_decoder = dict(width=32, num_heads=2, layers=2)
    m.neck.update(in_channels=None, out_channels=32)
    m.class_names = class_names
    if 'bbox_head' in m:
        m.bbox_head.update(in_channels=32, feat_channels=32, stacked_convs=1)
        if num_classes:
            m.bbox_head.num_classes = num_classes
    else:
        m.rpn_head.update(in_channels=32, feat_channels=32)
        roi = m.roi_head
        roi.bbox_roi_extractor.out_channels = roi.mask_roi_extractor.out_channels = 32
        roi.bbox_head.update(in_channels=32, fc_out_channels=64)
        roi.mask_head.update(in_channels=32, conv_out_channels=32, num_convs=1)
        if num_classes:
            roi.bbox_head.num_classes = roi.mask_head.num_classes = num_classes
        m.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=50)
        m.train_cfg.rcnn.sampler.num = 32
        m.test_cfg.rpn.update(nms_pre=200, max_per_img=50)
    return cfg


def inheritance_depth(path: Path) -> int:
    bases = next((ast.literal_eval(node.value) for node in ast.parse(path.read_text()).body
                  if isinstance(node, ast.Assign)
                  and getattr(node.targets[0], 'id', '') == '_base_'), [])
    bases = [bases] if isinstance(bases, str) else bases
    return 1 + max((inheritance_depth((path.parent / b).resolve()) for b in bases), default=0)


def build(cfg: Config):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return DET_MODELS.build(cfg.model)


def samples(masks: bool = False, size=(64, 96)) -> list[DetDataSample]:
    h, w = size
    out = []
    for boxes, labels in (([[4., 4., 40., 30.], [50., 10., 90., 60.]], [0, 2]),
                          ([[10., 20., 60., 50.]], [1])):
        sample = DetDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size,
                                             batch_input_shape=size, scale_factor=(1.0, 1.0)))
        gt = InstanceData(bboxes=torch.tensor(boxes), labels=torch.tensor(labels))
        if masks:
            bitmaps = np.zeros((len(boxes), h, w), np.uint8)
            for i, (x1, y1, x2, y2) in enumerate(boxes):
                bitmaps[i, int(y1):int(y2), int(x1):int(x2)] = 1
            gt.masks = BitmapMasks(bitmaps, h, w)
        sample.gt_instances = gt
        out.append(sample)
    return out


@pytest.fixture(scope='module')
def retinanet():
    return build(tiny(RETINANET))


@pytest.fixture(scope='module')
def images():
    return torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_every_detection_config_builds(path):
    cfg = tiny(path, num_classes=None, class_names=None)
    assert cfg.default_scope == 'mmdet'
    assert cfg.val_evaluator.type == 'CocoMetric'
    assert inheritance_depth(path) <= 3
    model = build(cfg)
    assert model.class_names is None  # the dataset's, at run time
    assert model.neck.in_channels == model.backbone.neck_in_channels
    k = model.num_classes
    assert model.neck.in_channels[model.backbone.score_concat_index] - k in \
        model.backbone.level_channels
    declared = Config.fromfile(path).model.neck.in_channels
    if declared is not None:  # the COCO configs state RN50/RN101's widths + 80
        assert declared == [256, 512, 1024, 2048 + 80]


def test_synthetic_config_uses_the_vit_pyramid():
    cfg = Config.fromfile(SYNTHETIC)
    assert cfg.train_dataloader.dataset.metainfo.classes == (
        'red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'white')
    model = build(cfg)
    assert model.backbone.score_concat_index == 1  # patch 8: the score map is at stride 8
    assert model.neck.in_channels == [128, 128 + 8, 128, 128]


def test_init_weights_loads_clip_with_resized_pool_positions(tmp_path):
    from densevl.models.clip import create_clip, resize_attnpool_pos_embed

    source = create_clip('clip-tiny-random-rn').model
    with torch.no_grad():
        for param in source.parameters():
            param.add_(1.0)
    torch.save(source.state_dict(), tmp_path / 'clip.pth')
    cfg = tiny(RETINANET)
    cfg.model.backbone.clip.pretrained = str(tmp_path / 'clip.pth')
    backbone = build(cfg).backbone
    assert not torch.equal(backbone.image_encoder.visual.conv1.weight, source.visual.conv1.weight)
    backbone.init_weights()
    assert torch.equal(backbone.image_encoder.visual.conv1.weight, source.visual.conv1.weight)
    expected = resize_attnpool_pos_embed(source.visual.attnpool.positional_embedding, (8, 8))
    assert torch.equal(backbone.image_encoder.visual.attnpool.positional_embedding, expected)
    assert torch.equal(backbone.text_encoder.positional_embedding,
                       source.positional_embedding[:13])
    assert torch.equal(backbone.text_encoder.text_projection, source.text_projection)


def test_optimizer_multipliers(retinanet):
    from mmengine.optim import build_optim_wrapper

    cfg = tiny(RETINANET)
    wrapper = build_optim_wrapper(retinanet, cfg.optim_wrapper)
    lr = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    decay = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups
             for p in g['params']}
    backbone = retinanet.backbone
    assert lr[id(backbone.image_encoder.visual.conv1.weight)] == pytest.approx(1e-5)
    assert lr[id(backbone.text_encoder.contexts)] == pytest.approx(1e-4)
    assert lr[id(backbone.gamma)] == pytest.approx(1e-4)
    assert decay[id(backbone.context_decoder.decoder[0].norm1.weight)] == 0.0
    assert id(backbone.text_encoder.token_embedding.weight) not in lr  # frozen
    assert wrapper.clip_grad_kwargs['max_norm'] == 0.1


def test_retinanet_loss_with_auxiliary_box_loss(retinanet, images):
    retinanet.train()
    batch = samples()
    losses = retinanet.loss(images, batch)
    assert {'loss_cls', 'loss_bbox', 'loss_seg'} <= set(losses)
    total = sum(v.sum() if torch.is_tensor(v) else sum(x.sum() for x in v)
                for v in losses.values())
    total.backward()
    backbone = retinanet.backbone
    assert backbone.gamma.grad is not None and backbone.text_encoder.contexts.grad is not None
    assert backbone.image_encoder.visual.conv1.weight.grad is not None
    # the auxiliary loss is DenseCLIP's: BCE of the score map against box masks at stride 4
    retinanet.eval()
    with torch.no_grad():
        score_map = backbone(images).score_map
        targets, inside = rasterise_box_targets(
            [s.gt_instances.bboxes for s in batch], [s.gt_instances.labels for s in batch], 3,
            (16, 24))
        expected = box_score_map_loss(score_map, targets, inside)
        retinanet.train()
        retinanet.backbone.eval()  # no dropout / BN updates: same map as above
        again = retinanet.loss(images, batch)['loss_seg']
    assert again.item() == pytest.approx(expected.item(), rel=1e-5)
    retinanet.aux_loss_weight = 0.0
    assert 'loss_seg' not in retinanet.loss(images, batch)
    retinanet.aux_loss_weight = 1.0


def test_retinanet_predict_and_vocabulary(retinanet, images):
    retinanet.eval()
    with torch.no_grad():
        out = retinanet.predict(images, samples())
        pred = out[0].pred_instances
        assert pred.bboxes.shape[1] == 4 and pred.labels.shape == pred.scores.shape
        assert int(pred.labels.max()) < 3
        reworded = retinanet.predict(images, samples(), texts=['crimson', 'navy', 'lime'])
        assert len(reworded) == 2
    with pytest.raises(ValueError, match='closed-set'):
        retinanet.predict(images, samples(), texts=['red', 'blue'])
    with pytest.raises(ValueError, match='closed-set'):
        retinanet.class_names = ['a', 'b', 'c', 'd']
    with pytest.raises(ValueError, match='3 classes'):
        build(tiny(RETINANET, class_names=['red', 'blue']))
    bad = tiny(RETINANET)
    bad.model.neck.in_channels = [32, 64, 128, 256]
    with pytest.raises(ValueError, match='in_channels'):
        build(bad)


def test_synonyms_are_pooled_in_the_score_map(retinanet, images):
    """A class given with synonyms scores the best of them, as segmentors pool them."""
    from densevl.models.clip import score_map

    backbone = retinanet.backbone.eval()
    texts = ['red; crimson', 'navy', 'lime']
    with torch.no_grad():
        out = backbone(images, texts)
        per_query = score_map(out.dense, out.text, backbone.score_scale)
        assert out.text.shape[1] == 4 and out.score_map.shape[1] == 3
        assert torch.equal(out.score_map[:, 0], per_query[:, :2].amax(1))
        assert torch.equal(out.score_map[:, 1:], per_query[:, 2:])
        found = retinanet.predict(images, samples(), texts=texts)[0].pred_instances
    assert int(found.labels.max()) < 3


def test_vocabulary_is_required_outside_a_runner(images):
    model = build(tiny(RETINANET, class_names=None)).eval()
    with pytest.raises(ValueError, match='no class names'), torch.no_grad():
        model.predict(images, samples())
    model.class_names = NAMES
    assert model.class_names == NAMES


def test_mask_rcnn_loss_and_predict(images):
    model = build(tiny(MASK_RCNN)).train()
    losses = model.loss(images, samples(masks=True))
    assert {'loss_rpn_cls', 'loss_cls', 'loss_mask', 'loss_aux_seg'} <= set(losses)
    assert torch.isfinite(losses['loss_aux_seg']) and losses['loss_aux_seg'] > 0
    model.eval()
    with torch.no_grad():
        pred = model.predict(images, samples())[0].pred_instances
    assert pred.masks.shape[1:] == (64, 96) and len(pred.masks) == len(pred.bboxes)


def _published(model) -> dict:
    """The model's weights under the reference's key names, spelled out independently."""
    renames = (('backbone.image_encoder.visual.', 'backbone.'),
               ('backbone.text_encoder.', 'text_encoder.'),
               ('backbone.context_decoder.', 'context_decoder.'))
    out = {}
    for key, value in model.state_dict().items():
        if key == 'backbone.text_encoder.contexts':
            out['contexts'] = value.clone()
            continue
        if key == 'backbone.gamma':
            out['gamma'] = value.clone()
            continue
        for new, old in renames:
            if key.startswith(new):
                key = old + key[len(new):]
                break
        out[key] = value.clone()
    return out


def test_published_layout_uses_the_reference_names(retinanet):
    golden = torch.load(GOLDEN, weights_only=True)['weights']
    published = _published(retinanet)
    # the golden ModifiedResNet has the tiny model's layers; its decoder the test's 2 layers
    assert {k[len('backbone.'):] for k in published if k.startswith('backbone.')} == \
        set(golden['rn'])
    assert {k[len('context_decoder.'):] for k in published
            if k.startswith('context_decoder.')} == set(golden['decoder'])
    text = {k[len('text_encoder.'):] for k in published if k.startswith('text_encoder.')}
    reference_text = {k for k in golden['text'] if not k.startswith('transformer.resblocks.1.')}
    assert text - {'token_embedding.weight'} == reference_text
    assert published['text_encoder.positional_embedding'].shape[0] == 13
    assert published['backbone.attnpool.positional_embedding'].shape[0] == 1 + 8 * 8
    assert published['contexts'].shape == (1, 8, 64) and 'gamma' in published
    assert to_published_layout(retinanet.state_dict()).keys() == published.keys()


@pytest.fixture(scope='module')
def converted(tmp_path_factory, retinanet):
    """A released-style checkpoint of the tiny RetinaNet, converted by the CLI."""
    convert = load_script('tools/convert_denseclip_det_checkpoint.py').main
    root = tmp_path_factory.mktemp('det_ckpt')
    config = root / 'tiny_retinanet.py'
    tiny(RETINANET, class_names=None).dump(config)
    src, dst = root / 'published.pth', root / 'converted.pth'
    torch.save(dict(meta=dict(CLASSES=tuple(NAMES)), state_dict=_published(retinanet)), src)
    assert convert([str(src), str(dst), '--config', str(config)]) == 0
    return config, dst


def test_converted_checkpoint_loads_strictly_with_same_outputs(converted, retinanet, images,
                                                               capsys, tmp_path):
    convert = load_script('tools/convert_denseclip_det_checkpoint.py').main
    config, dst = converted
    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint['meta']['dataset_meta']['classes'] == NAMES
    fresh = build(Config.fromfile(config))
    assert compare_state_dict(fresh, checkpoint['state_dict']).ok
    fresh.load_state_dict(checkpoint['state_dict'], strict=True)
    fresh.class_names = NAMES
    retinanet.eval()
    fresh.eval()
    with torch.no_grad():
        for a, b in zip(retinanet._forward(images), fresh._forward(images)):
            for x, y in zip(a, b):
                assert torch.equal(x, y)
    # a checkpoint of another class count is refused with a listing of the mismatches
    other = _published(retinanet)
    other['bbox_head.retina_cls.weight'] = other['bbox_head.retina_cls.weight'][:9]
    other['neck.lateral_convs.0.conv.weight'] = other.pop('neck.lateral_convs.0.conv.weight')
    del other['gamma']
    torch.save(dict(state_dict=other), tmp_path / 'bad.pth')
    assert convert([str(tmp_path / 'bad.pth'), str(tmp_path / 'out.pth'),
                    '--config', str(config)]) == 1
    err = capsys.readouterr().err
    assert 'missing' in err and 'backbone.gamma' in err and 'retina_cls.weight' in err
    assert not (tmp_path / 'out.pth').exists()
    with pytest.raises(ValueError, match='not in the DenseCLIP detection layout'):
        convert_det_state_dict({'contexts': torch.zeros(1), 'head.fc.weight': torch.zeros(1)})


def test_inferencer_and_demo(converted, tmp_path):
    from densevl.apis import DetPrediction, OpenVocabDetInferencer

    demo = load_script('demo/image_demo.py').main
    config, weights = converted
    image = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    detector = OpenVocabDetInferencer(str(config), weights=str(weights), device='cpu')
    assert detector.class_names == NAMES and not detector.is_random_weights
    out = detector(image, score_threshold=0.0, out_dir=tmp_path)
    pred = out['predictions'][0]
    assert isinstance(pred, DetPrediction) and pred.masks is None
    n = len(pred.scores)
    assert n > 0 and pred.boxes.shape == (n, 4) and pred.labels.shape == (n,)
    assert bool((pred.scores[:-1] >= pred.scores[1:]).all())
    assert float(pred.boxes[:, 2].max()) <= 80 + 1e-3  # in the image's own pixels
    assert out['visualization'][0].shape == (48, 80, 3)
    assert (tmp_path / 'image_0_det.png').is_file()
    assert detector(image, texts=['a', 'b', 'c'], score_threshold=1.1)[
        'predictions'][0].boxes.shape == (0, 4)
    with pytest.raises(ValueError, match='closed-set'):
        detector(image, texts=['a', 'b'])

    path = tmp_path / 'scene.png'
    Image.fromarray(image).save(path)
    out_file = tmp_path / 'scene_det.png'
    assert demo([str(path), '--task', 'det', '--model', str(config), '--weights', str(weights),
                 '--score-threshold', '0.0', '--out-file', str(out_file)]) == 0
    assert out_file.is_file()
    assert demo([str(path), '--task', 'det']) == 2  # a detection config is required


def test_train_and_test_tools_on_synthetic_coco(tmp_path):
    from densevl.datasets.synthetic import write_dataset

    data = tmp_path / 'synthetic'
    write_dataset(data, counts=dict(train=8, test=4), progress=False)
    # CLIP weights of the proving ground's architecture (random: the packaged ones may be absent)
    clip_weights = tmp_path / 'clip.pth'
    torch.save(open_clip.CLIP(**SYNTHETIC_CONFIGS['vit']['config']).state_dict(), clip_weights)
    cfg = Config.fromfile(SYNTHETIC)
    cfg.model.backbone.clip.pretrained = str(clip_weights)
    cfg.model.backbone.context_decoder = dict(width=32, num_heads=2, layers=1)
    cfg.model.neck.out_channels = 32
    cfg.model.bbox_head.update(in_channels=32, feat_channels=32, stacked_convs=1)
    cfg.model.test_cfg.score_thr = 0.0  # random heads score below 0.05: keep boxes to evaluate
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(batch_size=4, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = str(data) + '/'
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        evaluator.ann_file = str(data / 'coco' / 'instances_test.json')
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    # two file names: mmengine names a run's logger after its config file and start second
    train_config, test_config = tmp_path / 'tiny_train.py', tmp_path / 'tiny_test.py'
    cfg.dump(train_config)
    cfg.dump(test_config)
    work = tmp_path / 'work'
    load_script('tools/train.py').main([str(train_config), '--work-dir', str(work)])
    checkpoint = work / 'iter_2.pth'
    assert checkpoint.is_file()
    train_log = ''.join(p.read_text() for p in work.glob('*/*.log'))
    assert 'vocabulary of 8 classes from the dataset' in train_log
    assert 'loss_seg' in train_log
    load_script('tools/test.py').main([str(test_config), str(checkpoint),
                                       '--work-dir', str(work / 'test')])
    test_log = ''.join(p.read_text() for p in (work / 'test').glob('*/*.log'))
    assert 'coco/bbox_mAP' in test_log
