# The test protocol of the unsupervised / zero-shot segmentation benchmarks as ReCo runs them
# (after PiCIE and STEGO), added beside ov_seg_benchmark.py's loader (the val split one image at
# a time): ReCo's metric (ReCoIoUMetric: aAcc, mIoU, mAcc) and, for COCO-Stuff-27 and
# Cityscapes-27, reco_test_pipeline: image and label map both resized with nearest-neighbour
# sampling (PIL's, as torchvision's) to a short side of 320 and centre-cropped to 320 x 320, and
# scored at that size. mmcv rounds the resized long side where torchvision truncates it, so a crop
# can sit up to one pixel off the reference's. KITTI-STEP is scored at full resolution.
reco_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # the long side never binds: the short side goes to 320
    dict(type='Resize', scale=(32000, 320), keep_ratio=True, interpolation='nearest',
         backend='pillow'),
    dict(type='CenterCrop', crop_size=320),
    # segmentors return predictions at ori_shape: make it the crop's, the labels' size
    dict(type='SetOriShapeToImgShape'),
    dict(type='PackSegInputs'),
]
# The metric is named reco_evaluator, not test_evaluator: a config that adds default_runtime.py
# (whose test_evaluator is mmseg's IoUMetric) could not list both as bases; it sets
# test_evaluator = dict(_delete_=True, **_base_.reco_evaluator).
reco_evaluator = dict(type='ReCoIoUMetric')
