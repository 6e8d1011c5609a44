# The test protocol of the open-vocabulary segmentation benchmarks, as SCLIP, NACLIP and ClearCLIP
# run them: the val split one image at a time, short side resized to 336 (long side at most
# 2048), metrics on the original-size label map; validation runs the test. A benchmark config
# (ade20k.py, voc21.py, ...) adds its dataset and, where it differs, the resize (cityscapes.py,
# coco_stuff171.py, synthetic.py) and the batch (synthetic.py).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    # after Resize: metrics are computed on the original-size label map; mmseg's LoadAnnotations
    # for 8-bit maps, and 16-bit ones (ADE-847, PC-459) kept 16-bit
    dict(type='LoadUint16Annotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(pipeline=test_pipeline))
val_dataloader = test_dataloader
