# DenseCLIP with a Semantic FPN on the proving ground: the tiny CLIP trained on the synthetic
# world (clip-synthetic-tiny: ViT, patch 8, width 128, 4 blocks, packaged weights), 64-px scenes.
# As the published model except for size: the pyramid's levels come from blocks 0-3 (all of
# them), the score map (stride 8) joins the stride-8 level, FPN and head have 64 channels, BN,
# no drop path, CLIP's own class embedding, whole-image test.
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='DenseCLIPSegmentor',
    clip=dict(model_name='clip-synthetic-tiny', pretrained=None),  # packaged weights
    class_names='SyntheticSceneDataset',  # its 14 classes
    input_resolution=64,
    vit=dict(norm='BN', drop_path_rate=0.0, double_class_embedding=False),
    num_context=8,
    name_length=5,
    context_decoder=dict(width=256, num_heads=4, layers=3, dropout=0.1),
    tau=0.07,
    identity_loss=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4),
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
