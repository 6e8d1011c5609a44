# Proving ground: DenseCLIP Mask R-CNN on the synthetic scene world (data/synthetic, written by
# tools/make_synthetic_dataset.py), COCO boxes and instance masks (RLE) of the 8 colour things, with
# the tiny CLIP trained on that world (clip-synthetic-tiny: ViT, patch 8, width 128, packaged
# weights). A CPU-sized run, as retinanet_denseclip_clip-synthetic-tiny_800it_synthetic-128.py:
# 64-pixel scenes resized to 128, batch 8, 800 iterations (3.2 epochs of the 2000 training
# scenes), evaluated by CocoMetric (boxes and masks) on the 500 test scenes. The test split holds
# seen colours only (pink and purple never appear in train/val/test).
#
# Built on the RN50 model of mask-rcnn_denseclip_r50_1x_coco.py; what differs, each for the
# tiny size: a ViT pyramid
# instead of a ModifiedResNet (the score map, at the ViT's stride 8, is fused into the stride-8
# level); FPN, RPN and RoI heads at 64 channels, the box head's two fc layers 256 wide; RPN anchors
# a quarter as large (scales=[2]: 8-128 px on strides 4-64, for the 6-58 px things of the 128-px
# scenes; the RoI extractors keep finest_scale 56, so every thing is pooled from the stride-4
# level, the only one where it spans 7 or more cells); fewer proposals (1000 before NMS, 300
# after) and 128 sampled RoIs per image for scenes of 1-4 things; lr 5e-4 for the 8-image batch
# with a 100-iteration warm-up and steps at 600 and 750 (the RetinaNet run's schedule).
_base_ = [
    '../_base_/models/mask-rcnn_denseclip_r50-fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/default_runtime_det.py'
]

classes = ('red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'white')

model = dict(
    backbone=dict(
        _delete_=True,
        type='DenseCLIPDetBackbone',
        clip=dict(model_name='clip-synthetic-tiny', pretrained=None),  # packaged weights
        vit=dict(norm='BN', drop_path_rate=0.0),
        text_context_length=13,
        num_context=8,
        name_length=5,
        context_decoder=dict(width=256, num_heads=4, layers=3, dropout=0.1),
        tau=0.07),
    neck=dict(in_channels=None, out_channels=64),  # in: [128, 128 + 8, 128, 128], filled in
    rpn_head=dict(in_channels=64, feat_channels=64, anchor_generator=dict(scales=[2])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=8),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(in_channels=64, conv_out_channels=64, num_classes=8)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300),
                   rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(max_per_img=300)))

data_root = 'data/synthetic/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    batch_sampler=None,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='coco/instances_train.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='coco/instances_test.json',
        data_prefix=dict(img='images/test/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'coco/instances_test.json', metric=['bbox', 'segm'])
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=800, val_interval=800)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=800, by_epoch=False, milestones=[600, 750], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0005, weight_decay=0.0001),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'backbone.image_encoder': dict(lr_mult=0.1),
        'norm': dict(decay_mult=0.0)
    }))

log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=400, max_keep_ckpts=2))
