# RefCOCO-format grounding test data (configs/groundvlp): one sample per sentence of a split of a
# refs(...).p file with its instances.json (RefCOCO / RefCOCO+: UNC val, testA, testB; RefCOCOg:
# UMD val, test), images from COCO train2014; Acc@0.5 per sentence (GroundingAccuracyMetric).
# Leaves set data_root / split_file / split. Data layout: configs/groundvlp/README.md.
test_pipeline = [
    dict(type='PackDetInputs',
         meta_keys=('img_path', 'img_id', 'height', 'width', 'text', 'ref_id', 'ann_id',
                    'sent_id', 'category', 'gt_bbox'))
]
test_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='RefCOCOGroundingDataset',
        data_root='data/refcoco/',
        split_file='refs(unc).p',
        ann_file='instances.json',
        split='val',
        data_prefix=dict(img_path='../coco/train2014'),
        pipeline=test_pipeline))
test_evaluator = dict(type='GroundingAccuracyMetric')
test_cfg = dict(type='TestLoop')
