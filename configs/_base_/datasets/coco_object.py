# COCO-Object val2017 (5,000 images), 80 things + background scored.
# Label maps: datasets/cvt_coco_object.py of SCLIP/NACLIP, written beside COCO-Stuff's.
# Adds the benchmark's vocabulary and background threshold to the training-free model.
_base_ = ['../models/training_free_vit-b16.py', '../default_runtime.py']

# Resolved next to this file, so the tools run from any directory.
model = dict(class_names='{{fileDirname}}/../names/coco_object.txt', prob_threshold=0.1)

dataset_type = 'COCOObjectDataset'
data_root = 'data/coco_stuff164k'
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
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
val_dataloader = test_dataloader
