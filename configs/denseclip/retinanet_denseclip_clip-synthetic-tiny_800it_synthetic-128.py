# Proving ground: DenseCLIP RetinaNet on the synthetic scene world (data/synthetic, written by
# tools/make_synthetic_dataset.py), COCO boxes of the 8 colour things, with the tiny CLIP trained on
# that world (clip-synthetic-tiny: ViT, patch 8, width 128, packaged weights). A CPU-sized run:
# 64-pixel scenes resized to 128, batch 8, 800 iterations (3.2 epochs of the 2000 training
# scenes), evaluated by CocoMetric on the 500 test scenes. The test split holds seen colours only
# (pink and purple never appear in train/val/test; point the test set at instances_novel.json to
# see the closed-set head fail on them).
#
# Differences from the COCO configs, each for the tiny size: a ViT pyramid instead of a
# ModifiedResNet (the score map, at the ViT's stride 8, is fused into the stride-8 level), FPN and
# head at 64 channels, anchors half as large (octave_base_scale 2: 16-100 px), lr 5e-4 for the
# 8-image batch with a 100-iteration warm-up and steps at 600 and 750
# (_base_/schedules/schedule_800it_det.py).
_base_ = [
    '../_base_/models/retinanet_denseclip_r50-fpn.py', '../_base_/datasets/synthetic_detection.py',
    '../_base_/schedules/schedule_800it_det.py'
]

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
    bbox_head=dict(
        num_classes=8, in_channels=64, feat_channels=64,
        anchor_generator=dict(octave_base_scale=2)))
