# OVSeg on the proving ground: the published R101c + CLIP ViT-B/16 design (ov-seg
# configs/ovseg_R101c_vitB_bs32_120k.yaml) at toy size. A MaskFormer proposal network (a
# ResNetV1c-18 of width 16 from scratch, mmdet's GroupNorm pixel decoder and a 2-layer, 64-wide
# transformer decoder on the last level, 16 queries, deep supervision) whose class head maps each
# query into the tiny CLIP's space (MLP 64 -> 256 -> 128, 100 x cosine with the frozen text
# embeddings plus a learned no-object embedding, class weight 0.1); the frozen clip-synthetic-tiny
# classifies every proposal's masked crop above mask threshold 0.5 (64 px, its input size; no mask
# prompts: none were tuned for it), and the two are ensembled geometrically (CLIP's share 0.7,
# OVSeg's ADE-150 value; untuned here). The losses and the matching are MaskFormer's:
# cross-entropy 1 (no-object 0.1), sigmoid focal 20, dice 1 on every decoder layer, Hungarian
# matching with the same weights. Bare class words as prompts, as the tiny CLIP learned them.
# The CLIP, the 14 classes, the whole-image test and the data preprocessor (CLIP's mean and std,
# 64-px scenes) are those of the trained proving-ground models: seg_clip-synthetic-tiny.py.
_base_ = ['./seg_clip-synthetic-tiny.py']

model = dict(
    type='OVSegSegmentor',
    clip=dict(mask_embedding=None),
    train_class_names=None,  # a leaf config names the seen classes
    templates=('{}', ),
    classifier='masked_crops',
    dense_mode='sclip',  # mask pooling's dense CLIP (the proving ground's best dense mode)
    ensemble_weight=0.7,
    mask_threshold=0.5,
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        style='pytorch'),
    decode_head=dict(
        type='OVSegMaskFormerHead',  # embed_dims, text_width, num_classes filled in
        in_channels=[16, 32, 64, 128],
        feat_channels=64,
        out_channels=64,
        num_queries=16,
        class_hidden_dims=256,
        class_layers=2,
        no_object_weight=0.1,
        pixel_decoder=dict(
            type='mmdet.PixelDecoder',
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU')),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=32, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=2,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=64, num_heads=4, attn_drop=0.1, proj_drop=0.1,
                                   dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=64, num_heads=4, attn_drop=0.1, proj_drop=0.1,
                                    dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=64, feedforward_channels=256, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.1,
                             dropout_layer=None, add_identity=True)),
            init_cfg=None),
        loss_mask=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                       reduction='mean', loss_weight=20.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                       naive_dice=True, eps=1.0, loss_weight=1.0),
        train_cfg=dict(
            assigner=dict(
                type='mmdet.HungarianAssigner',
                match_costs=[
                    dict(type='mmdet.ClassificationCost', weight=1.0),
                    dict(type='mmdet.FocalLossCost', weight=20.0, binary_input=True),
                    dict(type='mmdet.DiceCost', weight=1.0, pred_act=True, eps=1.0)
                ]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))))
