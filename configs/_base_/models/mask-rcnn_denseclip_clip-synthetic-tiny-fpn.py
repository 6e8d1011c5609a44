# DenseCLIP Mask R-CNN sized for the proving ground (128-px scenes of 1-4 things, 8 classes), on
# the tiny CLIP trained on the synthetic world (clip-synthetic-tiny: ViT, patch 8, width 128,
# packaged weights). The RN50 model of mask-rcnn_denseclip_r50-fpn.py except, each for the tiny
# size: a ViT pyramid instead of a ModifiedResNet (the score map, at the ViT's stride 8, is fused
# into the stride-8 level); FPN, RPN and RoI heads at 64 channels, the box head's two fc layers
# 256 wide; RPN anchors a quarter as large (scales=[2]: 8-128 px on strides 4-64, for the 6-58 px
# things of the 128-px scenes; the RoI extractors keep finest_scale 56, so every thing is pooled
# from the stride-4 level, the only one where it spans 7 or more cells); fewer proposals (1000
# before NMS, 300 after) and 128 sampled RoIs per image.
_base_ = ['./mask-rcnn_denseclip_r50-fpn.py']

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
