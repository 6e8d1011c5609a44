# KITTI-STEP val (2,981 frames), the 19 Cityscapes classes, at full resolution (no resize, no
# crop), with ReCo's metric (reco_protocol.py); the dataset's defaults read val (the frames) and
# panoptic_maps/val.
_base_ = ['./ov_seg_benchmark.py', './reco_protocol.py']

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadKittiStepAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(type='KittiStepDataset', data_root='data/kitti_step',
                                    pipeline=test_pipeline))
val_dataloader = test_dataloader
