# The CLIP-FPN baseline on the proving ground: the tiny CLIP trained on the synthetic world
# (clip-synthetic-tiny: ViT, patch 8, width 128, 4 blocks, packaged weights) as a plain pyramid
# backbone, 64-px scenes. As clip-fpn_r50.py except for size: the pyramid's levels come from
# blocks 0-3 (all of them), FPN and head have 64 channels and 14 classes, BN, no drop path,
# CLIP's own class embedding, whole-image test. denseclip-fpn_clip-synthetic-tiny.py builds
# DenseCLIP on it.
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='CLIPFPNSegmentor',
    clip=dict(model_name='clip-synthetic-tiny', pretrained=None),  # packaged weights
    class_names='SyntheticSceneDataset',  # its 14 classes
    input_resolution=64,
    vit=dict(norm='BN', drop_path_rate=0.0, double_class_embedding=False),
    neck=dict(type='FPN', out_channels=64, num_outs=4),  # in_channels filled in
    decode_head=dict(
        type='FPNHead',
        in_channels=[64, 64, 64, 64],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=64,
        dropout_ratio=0.1,
        num_classes=14,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'),
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[122.771, 116.746, 104.094],
        std=[68.501, 66.632, 70.323],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(64, 64)))
