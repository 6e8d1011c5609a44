# DenseCLIP with a Semantic FPN, as published for ADE20K-150 (the DenseCLIP reference code,
# segmentation/configs/denseclip_fpn_res50_512x512_80k.py): CLIP RN50 built at 512 px (attention
# pool grid 16x16), 8 learned context vectors before a 5-token name slot, context decoder of
# 3 layers (width 256, 4 heads), score map fused into res5, FPN (256) + FPNHead (256, dropout
# 0.1, CE 1.0), identity auxiliary head: CE on score_map / 0.07, weight 0.4. Slide test 512/341.
# Leaf configs pick the backbone (model.clip, input_resolution, vit) and the variant.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='DenseCLIPSegmentor',
    clip=dict(model_name='RN50-quickgelu', pretrained='openai'),  # loaded by init_weights
    class_names='ADE20KDataset',  # the dataset's classes, as DenseCLIP's train/test scripts set
    input_resolution=512,
    num_context=8,
    name_length=5,
    context_decoder=dict(width=256, num_heads=4, layers=3, dropout=0.1),
    tau=0.07,
    identity_loss=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4),
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
