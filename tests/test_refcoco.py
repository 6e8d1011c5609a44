"""RefCOCO-format grounding data: the safe refs loader, the per-sentence dataset and Acc@0.5."""
import os
import pickle

import pytest
import torch
from mmdet.registry import DATASETS, METRICS
from mmengine.registry import DefaultScope

import densevl.datasets.mm_datasets  # noqa: F401  (registers)
from densevl.datasets.safe_pickle import UnsafePickleError, load_plain_pickle
from densevl.datasets.synthetic import write_dataset
from densevl.evaluation.grounding_accuracy import GroundingAccuracyMetric, refcoco_iou  # noqa


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp('world'), counts={'val': 3, 'test': 2}, size=48,
                         refs_per_object=2, progress=False)


def _build(registry, cfg):
    with DefaultScope.overwrite_default_scope('mmdet'):
        return registry.build(cfg)


def _dataset(world, split='val', **kwargs):
    return _build(DATASETS, dict(type='RefCOCOGroundingDataset', data_root=str(world / 'refcoco'),
                                 split_file='refs(synthetic).p', split=split,
                                 data_prefix=dict(img_path=str(world / 'images')), **kwargs))


def test_one_sample_per_sentence(world):
    refs = load_plain_pickle(world / 'refcoco' / 'refs(synthetic).p')
    dataset = _dataset(world)
    val = [r for r in refs if r['split'] == 'val']
    assert len(dataset) == sum(len(r['sentences']) for r in val) > 0
    first = dataset.get_data_info(0)
    ref = val[0]
    assert first['text'] == ref['sentences'][0]['sent'] and first['ref_id'] == ref['ref_id']
    assert os.path.isfile(first['img_path'])
    import json
    ann = {a['id']: a for a in json.load(open(world / 'refcoco' / 'instances.json'))['annotations']}
    x, y, w, h = ann[ref['ann_id']]['bbox']
    assert first['gt_bbox'] == [x, y, x + w, y + h] == first['instances'][0]['bbox']
    assert first['category'] == dataset.metainfo['classes'][first['instances'][0]['bbox_label']]
    assert len(_dataset(world, 'test')) > 0


def test_unknown_split(world):
    with pytest.raises(ValueError, match="has no split 'testA'; its splits are test, val"):
        _dataset(world, 'testA')


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_malicious_pickle_is_refused_without_running(tmp_path, world):
    marker = tmp_path / 'pwned'
    bad = tmp_path / 'refs(unc).p'
    bad.write_bytes(pickle.dumps([{'split': 'val', 'x': _Exploit(marker)}]))
    with pytest.raises(UnsafePickleError, match='asks for (posix|os|nt).system'):
        load_plain_pickle(bad)
    assert not marker.exists()
    # through the dataset too
    (tmp_path / 'instances.json').write_text((world / 'refcoco' / 'instances.json').read_text())
    with pytest.raises(UnsafePickleError, match='refused without running'):
        _build(DATASETS, dict(type='RefCOCOGroundingDataset', data_root=str(tmp_path),
                              split='val'))
    assert not marker.exists()


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_pickles_load(tmp_path, protocol):
    data = [{'a': (1, 2.5, None, True), 'b': ['x', 'é'], 'c': {3: -7.0}}, -7]
    path = tmp_path / 'plain.p'
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    assert load_plain_pickle(path) == data
    # before protocol 4 a set is built by calling builtins.set: refused like any other call
    path.write_bytes(pickle.dumps({1, 2}, protocol=protocol))
    if protocol < 4:
        with pytest.raises(UnsafePickleError, match=r'builtin.*\.set'):
            load_plain_pickle(path)
    else:
        assert load_plain_pickle(path) == {1, 2}


def test_broken_pickles(tmp_path):
    path = tmp_path / 'cut.p'
    path.write_bytes(pickle.dumps({'a': list(range(100))})[:20])
    with pytest.raises(ValueError, match='not a readable pickle'):
        load_plain_pickle(path)
    with pytest.raises(FileNotFoundError):
        load_plain_pickle(tmp_path / 'missing.p')


@pytest.mark.parametrize('box1, box2, iou', [
    ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
    ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
    ([0, 0, 10, 10], [9, 0, 19, 10], 0.0),          # a one-pixel overlap counts as none
    ([0, 0, 10, 10], [8, 0, 18, 10], 20 / 180),     # inclusive pixels: 2 columns, not 2
    ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
    ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),
])
def test_reference_iou(box1, box2, iou):
    assert refcoco_iou(box1, box2) == pytest.approx(iou)
    assert refcoco_iou(box2, box1) == pytest.approx(iou)


def test_accuracy_metric():
    metric = _build(METRICS, dict(type='GroundingAccuracyMetric'))
    gt = [0, 0, 10, 10]

    class Sample(dict):
        def to_dict(self):
            return dict(self)

    metric.process(None, [dict(gt_bbox=gt, pred_bbox=[0, 0, 10, 10]),
                          dict(gt_bbox=gt, pred_bbox=torch.tensor([[5.0, 0, 15, 10]])),  # 1/3
                          dict(gt_bbox=gt, pred_bbox=None),
                          Sample(gt_bbox=torch.tensor(gt), pred_bbox=[0, 0, 10, 6])])    # 0.6
    assert metric.evaluate(4) == {'grounding/Acc@0.5': pytest.approx(50.0)}
    with pytest.raises(KeyError, match='gt_bbox'):
        metric.process(None, [dict(pred_bbox=gt)])
    with pytest.raises(ValueError, match='4 numbers'):
        metric.process(None, [dict(gt_bbox=gt, pred_bbox=[1, 2])])
    with pytest.raises(ValueError, match='iou_threshold'):
        GroundingAccuracyMetric(iou_threshold=0)


def test_accuracy_on_the_synthetic_split(world):
    dataset = _dataset(world)
    right = GroundingAccuracyMetric()
    right.process(None, [dict(gt_bbox=d['gt_bbox'], pred_bbox=d['gt_bbox'])
                         for d in (dataset.get_data_info(i) for i in range(len(dataset)))])
    assert right.evaluate(len(dataset)) == {'grounding/Acc@0.5': 100.0}
    wrong = GroundingAccuracyMetric(prefix='w')
    wrong.process(None, [dict(gt_bbox=dataset.get_data_info(i)['gt_bbox'], pred_bbox=[0, 0, 1, 1])
                         for i in range(len(dataset))])
    assert wrong.evaluate(len(dataset))['w/Acc@0.5'] < 20
