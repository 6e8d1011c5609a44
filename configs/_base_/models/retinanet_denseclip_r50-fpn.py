# DenseCLIP RetinaNet with CLIP RN50, as the reference's retinanet_denseclip_r50_fpn_1x_coco.py
# builds it: the DenseCLIP backbone (score map of the 80 COCO classes, cos / 0.07, on res5;
# auxiliary box-target loss; attention-pool positions for 1344-pixel inputs), FPN from stride 8
# with extra convs on the input, and the RetinaNet head (focal loss, L1 box loss). The COCO
# configs and the proving ground build on it.
model = dict(
    type='DenseCLIPRetinaNet',
    class_names=None,  # the dataset's classes
    aux_loss_weight=1.0,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[122.771, 116.746, 104.094],
        std=[68.501, 66.632, 70.323],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='DenseCLIPDetBackbone',
        clip=dict(model_name='RN50', pretrained='openai'),
        input_resolution=1344,
        text_context_length=13,
        num_context=8,
        name_length=5,
        context_decoder=dict(width=256, num_heads=4, layers=3, dropout=0.1),
        tau=0.07),
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048 + 80],
        out_channels=256,
        start_level=1,
        add_extra_convs='on_input',
        num_outs=5),
    bbox_head=dict(
        type='RetinaHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=4,
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.4,
            min_pos_iou=0,
            ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100))
