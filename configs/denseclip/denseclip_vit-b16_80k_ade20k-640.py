# DenseCLIP ViT-B/16 + Semantic FPN, ADE20K-150, 640x640 crops, 80k iterations (paper: 50.6).
# As published: positions resized 14x14 -> 40x40, pyramid from blocks 3/5/7/11 with SyncBN in
# the stride-4 branch, drop path 0.1 per token position, the doubled class embedding its weights
# were trained with; the score map joins the stride-16 level; slide test 640/426.
_base_ = [
    '../_base_/models/denseclip-fpn_r50.py', '../_base_/datasets/ade20k-640_train.py',
    '../_base_/schedules/schedule_80k.py'
]
model = dict(
    clip=dict(model_name='ViT-B-16-quickgelu'),
    input_resolution=640,
    vit=dict(norm='SyncBN', drop_path_rate=0.1, drop_path_mode='token',
             double_class_embedding=True),
    test_cfg=dict(mode='slide', crop_size=(640, 640), stride=(426, 426)),
    data_preprocessor=dict(size=(640, 640)))
