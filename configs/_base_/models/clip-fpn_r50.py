# The CLIP-FPN baseline of DenseCLIP (the DenseCLIP reference code,
# segmentation/configs/fpn_clipres50_512x512_80k.py), as published for ADE20K-150: CLIP RN50's
# image tower without its embedding head as a plain backbone (no text, no score map), FPN (256) +
# FPNHead (256, dropout 0.1, CE 1.0) over a fixed 150-class classifier, slide test 512/341.
# denseclip-fpn_r50.py builds DenseCLIP on it. Leaf configs pick the backbone (model.clip,
# input_resolution, vit).
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='CLIPFPNSegmentor',
    clip=dict(model_name='RN50-quickgelu', pretrained='openai'),  # loaded by init_weights
    class_names='ADE20KDataset',  # the dataset's classes, as DenseCLIP's train/test scripts set
    input_resolution=None,  # the ResNets' positional grid is part of the dropped attention pool
    neck=dict(type='FPN', out_channels=256, num_outs=4),  # in_channels filled in
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=256,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)),
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[122.771, 116.746, 104.094],
        std=[68.501, 66.632, 70.323],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(512, 512)))
