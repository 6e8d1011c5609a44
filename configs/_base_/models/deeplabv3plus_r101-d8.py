# ReCo+'s segmentor (NoelShin/reco networks/reco_plus.py: VainF's deeplabv3plus_resnet101):
# DeepLabv3+ on ResNet-101 at output stride 8 (dilations 2 and 4 in the last two stages), ASPP
# rates 12 / 24 / 36 with 256 channels and dropout 0.1, the stride-4 features projected to 48
# channels, depthwise-separable convolutions in the head, BN momentum 0.01, no auxiliary head;
# here mmseg's DepthwiseSeparableASPPHead on ResNetV1c-101 (ImageNet weights of open-mmlab; the
# reference starts from torchvision's ResNet-101), downloaded when training starts, not when the
# model is built. Crops of 320 x 320 padded with the mean colour (PadToSizeWithMean in the
# pipeline; a smaller batch element is padded to the crop by the data preprocessor, with 0 after
# normalisation: the mean as well, and the ignore label).
norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                           seg_pad_val=255, size=(320, 320)),
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(type='ResNetV1c', depth=101, num_stages=4, out_indices=(0, 1, 2, 3),
                  dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg,
                  norm_eval=False, style='pytorch', contract_dilation=True),
    decode_head=dict(type='DepthwiseSeparableASPPHead', in_channels=2048, in_index=3,
                     channels=256, dilations=(1, 12, 24, 36), c1_in_channels=256, c1_channels=48,
                     dropout_ratio=0.1, num_classes=27, norm_cfg=norm_cfg, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                      loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
