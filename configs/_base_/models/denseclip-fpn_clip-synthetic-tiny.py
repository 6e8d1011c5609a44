# DenseCLIP with a Semantic FPN on the proving ground: the CLIP-FPN model of
# clip-fpn_clip-synthetic-tiny.py plus the text side of the published model (8 context vectors,
# 5-token name slot, 3-layer context decoder, identity loss 0.4), the score map (stride 8)
# joining the stride-8 level.
_base_ = ['./clip-fpn_clip-synthetic-tiny.py']

model = dict(
    type='DenseCLIPSegmentor',
    num_context=8,
    name_length=5,
    context_decoder=dict(width=256, num_heads=4, layers=3, dropout=0.1),
    tau=0.07,
    identity_loss=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4))
