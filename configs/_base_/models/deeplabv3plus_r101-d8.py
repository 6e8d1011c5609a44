# ReCo+'s segmentor (NoelShin/reco networks/reco_plus.py: VainF's deeplabv3plus_resnet101):
# DeepLabv3+ on ResNet-101 at output stride 8 (dilations 2 and 4 in the last two stages), ASPP
# rates 12 / 24 / 36 with 256 channels and dropout 0.1, the stride-4 features projected to 48
# channels, depthwise-separable convolutions in the head, BN momentum 0.01, no auxiliary head:
# mmseg's own DeepLabv3+ config at depth 101 with those changes. ResNetV1c-101 ImageNet weights of
# open-mmlab (the reference starts from torchvision's ResNet-101), downloaded when training
# starts, not when the model is built. Crops of 320 x 320 padded with the mean colour
# (PadToSizeWithMean in the pipeline; a smaller batch element is padded to the crop by the data
# preprocessor, with 0 after normalisation: the mean as well, and the ignore label).
_base_ = ['mmseg::_base_/models/deeplabv3plus_r50-d8.py']
norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
model = dict(
    data_preprocessor=dict(size=(320, 320)),
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101, norm_cfg=norm_cfg),
    decode_head=dict(channels=256, num_classes=27, norm_cfg=norm_cfg),
    auxiliary_head=None)
