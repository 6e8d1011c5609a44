# DenseCLIP with a Semantic FPN, as published for ADE20K-150 (the DenseCLIP reference code,
# segmentation/configs/denseclip_fpn_res50_512x512_80k.py): the CLIP-FPN model of clip-fpn_r50.py
# plus the text side. CLIP RN50 built at 512 px (attention pool grid 16x16), 8 learned context
# vectors before a 5-token name slot, context decoder of 3 layers (width 256, 4 heads), score
# map fused into res5, identity auxiliary head: CE on score_map / 0.07, weight 0.4.
# Leaf configs pick the backbone (model.clip, input_resolution, vit) and the variant.
_base_ = ['./clip-fpn_r50.py']

model = dict(
    type='DenseCLIPSegmentor',
    input_resolution=512,
    num_context=8,
    name_length=5,
    context_decoder=dict(width=256, num_heads=4, layers=3, dropout=0.1),
    tau=0.07,
    identity_loss=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4))
