# OVSeg on the proving ground: the published R101c + CLIP ViT-B/16 design
# (ovseg_r101c-clip-vit-b16.py) at toy size. A MaskFormer proposal network (a ResNetV1c-18 of
# width 16 from scratch, mmdet's GroupNorm pixel decoder and a 2-layer, 64-wide transformer
# decoder on the last level, 16 queries, deep supervision) whose class head maps each query into
# the tiny CLIP's space (MLP 64 -> 256 -> 128, 100 x cosine with the frozen text embeddings plus
# a learned no-object embedding, class weight 0.1); the frozen clip-synthetic-tiny classifies
# every proposal's masked crop above mask threshold 0.5 (64 px, its input size; no mask prompts:
# none were tuned for it), and the two are ensembled geometrically (CLIP's share 0.7, OVSeg's
# ADE-150 value; untuned here). The losses and the matching are the recipe's (MaskFormer's). Bare
# class words as prompts, as the tiny CLIP learned them. The CLIP, the 14 classes, the
# whole-image test and the data preprocessor (CLIP's mean and std, 64-px scenes) are those of the
# trained proving-ground models.
_base_ = ['./ovseg_r101c-clip-vit-b16.py']

tiny_attention = dict(embed_dims=64, num_heads=4)
model = dict(
    clip=dict(model_name='clip-synthetic-tiny', pretrained=None),  # packaged weights
    class_names='SyntheticSceneDataset',  # its 14 classes
    train_class_names=None,  # a leaf config names the seen classes
    templates=('{}', ),
    dense_mode='sclip',  # mask pooling's dense CLIP (the proving ground's best dense mode)
    backbone=dict(depth=18, stem_channels=16, base_channels=16, multi_grid=None, frozen_stages=-1,
                  norm_cfg=dict(requires_grad=True), norm_eval=False),
    decode_head=dict(
        in_channels=[16, 32, 64, 128],
        feat_channels=64,
        out_channels=64,
        num_queries=16,
        class_hidden_dims=256,
        positional_encoding=dict(num_feats=32),
        transformer_decoder=dict(num_layers=2, layer_cfg=dict(
            self_attn_cfg=tiny_attention, cross_attn_cfg=tiny_attention,
            ffn_cfg=dict(embed_dims=64, feedforward_channels=256)))),
    data_preprocessor=dict(mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323],
                           size=(64, 64)))
