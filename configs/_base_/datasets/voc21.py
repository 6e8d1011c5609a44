# PASCAL VOC 2012 val (1,449 images), 21 classes with background scored.
# Adds the benchmark's vocabulary and background threshold to the training-free model.
_base_ = ['../models/training_free_vit-b16.py', '../default_runtime.py']

# Resolved next to this file, so the tools run from any directory.
model = dict(class_names='{{fileDirname}}/../names/voc21.txt', prob_threshold=0.1)

dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    # after Resize: metrics are computed on the original-size label map
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
val_dataloader = test_dataloader
