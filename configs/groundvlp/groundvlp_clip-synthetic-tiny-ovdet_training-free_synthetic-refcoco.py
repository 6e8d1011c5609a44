# GroundVLP (zero-shot grounding, training-free) on the proving ground's RefCOCO-format test
# split (data/synthetic/refcoco, written by tools/make_synthetic_dataset.py): heat maps of
# clip-synthetic-tiny (packaged weights), the open-vocabulary Faster R-CNN of configs/ovdet in
# the detector slot (its seed-0 checkpoint; another with --cfg-options
# model.detector.weights=PATH). The categories of this world are colours, so the subject's noun
# phrase is mapped to a category (category_from='phrase'), as tools/benchmark_grounding.py's
# groundvlp_acc row does. Acc@0.5 per sentence.
_base_ = ['../_base_/default_runtime_det.py']
custom_imports = dict(
    imports=['densevl.models.mm_adapters', 'densevl.datasets.mm_datasets'],
    allow_failed_imports=False)

model = dict(
    type='GroundVLP',
    clip='clip-synthetic-tiny',
    clip_weights=None,  # the zoo's packaged weights
    detector=dict(
        config='{{fileDirname}}/../ovdet/'
        'ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128.py',
        weights='work_dirs/seed0/ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128/'
        'iter_800.pth'),
    category_mode='predicted',  # 'gt': the dataset's category, not strictly zero-shot
    category_from='phrase',
    predicted_score_thr=0.3,
    gt_score_thr=0.15)

test_pipeline = [
    dict(type='PackDetInputs',
         meta_keys=('img_path', 'img_id', 'height', 'width', 'text', 'ref_id', 'ann_id',
                    'sent_id', 'category', 'gt_bbox'))
]
test_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='RefCOCOGroundingDataset',
        data_root='data/synthetic/refcoco/',
        split_file='refs(synthetic).p',
        ann_file='instances.json',
        split='test',
        data_prefix=dict(img_path='../images'),
        pipeline=test_pipeline))
test_evaluator = dict(type='GroundingAccuracyMetric')
test_cfg = dict(type='TestLoop')
