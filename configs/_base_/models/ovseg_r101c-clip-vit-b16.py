# OVSeg as published with R101c + CLIP ViT-B/16 (ov-seg configs/ovseg_R101c_vitB_bs32_120k.yaml
# with its defaults, open_vocab_seg/config.py): a ResNet-101 with the DeepLab stem (3 convs to
# 128 channels, stride in the 3x3, res5 multi-grid dilations 1, 2, 4; frozen BN, stem and res2
# frozen, as detectron2's defaults), the MaskFormer of Cheng et al. (GroupNorm pixel decoder and
# mask features of 256, 6 transformer decoder layers on res5: width 256, 8 heads, FFN 2048,
# dropout 0.1, 100 queries, deep supervision), a class head MLP 256 -> 1024 -> 512 in CLIP space
# (100 x cosine with the frozen text embeddings of the 14 ViLD templates and a learned
# no-object embedding, weight 0.1), cross-entropy 1, sigmoid focal 20, dice 1 and Hungarian
# matching with the same weights. At test the frozen CLIP (OpenAI weights; the released
# mask-prompt-tuned ones through tools/convert_ovseg_clip_checkpoint.py and
# model.clip.pretrained / model.clip.mask_embedding) classifies every masked crop above mask
# threshold 0.5 and is ensembled with the head, CLIP's share 0.7 (ADE; 0.6 Pascal Context,
# 0.45 VOC-20). Images are normalised with ImageNet's mean and std for the proposal network.
# The backbone starts from detectron2's R-103.pkl, which mmseg has no copy of: set
# model.backbone.init_cfg to a converted copy to train. The last variable is the recipe's test
# resize (short side 512, long side at most 2048), which the test configs in configs/ovseg/ use.
attention = dict(embed_dims=256, num_heads=8, attn_drop=0.1, proj_drop=0.1, dropout_layer=None,
                 batch_first=True)
model = dict(
    type='OVSegSegmentor',
    clip=dict(model_name='ViT-B-16-quickgelu', pretrained='openai', mask_embedding=None),
    train_class_names='COCOStuffDataset',  # trained on COCO-Stuff-171; tested on any vocabulary
    templates='vild14',
    classifier='masked_crops',
    ensemble_weight=0.7,
    mask_threshold=0.5,
    backbone=dict(type='ResNetV1c', depth=101, stem_channels=128, multi_grid=(1, 2, 4),
                  frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True,
                  style='pytorch', init_cfg=None),
    decode_head=dict(
        type='OVSegMaskFormerHead',  # embed_dims, text_width, num_classes filled in
        in_channels=[256, 512, 1024, 2048],
        feat_channels=256,
        out_channels=256,
        num_queries=100,
        class_hidden_dims=1024,
        class_layers=2,
        no_object_weight=0.1,
        pixel_decoder=dict(type='mmdet.PixelDecoder', norm_cfg=dict(type='GN', num_groups=32),
                           act_cfg=dict(type='ReLU')),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=128, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=6,
            layer_cfg=dict(self_attn_cfg=attention, cross_attn_cfg=attention, ffn_cfg=dict(
                embed_dims=256, feedforward_channels=2048, num_fcs=2, ffn_drop=0.1,
                act_cfg=dict(type='ReLU', inplace=True), dropout_layer=None, add_identity=True)),
            init_cfg=None),
        loss_mask=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                       reduction='mean', loss_weight=20.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                       naive_dice=True, eps=1.0, loss_weight=1.0),
        train_cfg=dict(
            assigner=dict(type='mmdet.HungarianAssigner', match_costs=[
                dict(type='mmdet.ClassificationCost', weight=1.0),
                dict(type='mmdet.FocalLossCost', weight=20.0, binary_input=True),
                dict(type='mmdet.DiceCost', weight=1.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'),
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                           seg_pad_val=255, size=(512, 512)))
ovseg_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadUint16Annotations'),  # after Resize: metrics on the original-size labels
    dict(type='PackSegInputs'),
]
