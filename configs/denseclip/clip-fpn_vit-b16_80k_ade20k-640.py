# CLIP-FPN baseline: CLIP ViT-B/16 as a plain pyramid backbone + Semantic FPN, ADE20K-150,
# 640x640 crops, 80k iterations (paper: 49.4 mIoU). DenseCLIP's baseline ViT has no drop path
# and the same doubled class embedding as its DenseCLIP ViT.
_base_ = [
    '../_base_/models/clip-fpn_r50.py', '../_base_/datasets/ade20k-640_train.py',
    '../_base_/schedules/schedule_80k.py'
]

model = dict(
    clip=dict(model_name='ViT-B-16-quickgelu'),
    input_resolution=640,
    vit=dict(norm='SyncBN', drop_path_rate=0.0, double_class_embedding=True),
    test_cfg=dict(mode='slide', crop_size=(640, 640), stride=(426, 426)),
    data_preprocessor=dict(size=(640, 640)))
