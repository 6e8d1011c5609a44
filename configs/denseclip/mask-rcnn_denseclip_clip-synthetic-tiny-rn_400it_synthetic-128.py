# Proving ground: DenseCLIP Mask R-CNN on the synthetic scene world (data/synthetic, written by
# tools/make_synthetic_dataset.py), COCO boxes and instance masks (RLE) of the 8 colour things, with
# the ModifiedResNet tiny CLIP trained on that world (clip-synthetic-tiny-rn: 128-px scenes, stem
# width 16, one bottleneck per stage, levels of 64/128/256/512 channels, attention pool of 8 heads
# to a 128-d embedding; packaged weights): the published ResNet path, dense embeddings from the
# attention pool and the score map fused into res5. A CPU-sized run, the ViT version
# mask-rcnn_denseclip_clip-synthetic-tiny_400it_synthetic-128.py with this backbone (its neck,
# heads, proposals, data and schedule: the same bases): 64-pixel scenes resized to 128, batch 8,
# 400 iterations (1.6 epochs of the 2000 training scenes), evaluated by CocoMetric (boxes and
# masks) on the 500 test scenes.
# The test split holds seen colours only (pink and purple never appear in train/val/test).
#
# Differences from mask-rcnn_denseclip_r50_1x_coco.py, each for the tiny size: the tiny CLIP with
# its packaged weights instead of RN50 <- openai, so the neck's in_channels (filled in from the
# backbone) are [64, 128, 256, 512 + 8], the 8 classes' score map on res5 (stride 32, 4x4 for
# 128-px inputs); input_resolution 128 instead of 1344: the attention pool's positions form an
# input_resolution / 32 grid of which each batch takes the top-left window the size of res5, and
# the RN50 config sizes it for its largest padded input (the 1333-px long side padded to a
# multiple of 32: 1344, a 42x42 grid) so that every res5 map fits; every input here is a 128x128
# scene (a multiple of 32 already), hence 128, a 4x4 grid that is the tiny CLIP's own pretraining
# grid (image_size 128), used as trained with no resize, the window always the whole grid; FPN,
# RPN and RoI heads at 64 channels, the box head's two fc layers 256 wide; RPN anchors a quarter
# as large (scales=[2]: 8-128 px on strides 4-64, for the 6-58 px things of the 128-px scenes;
# the RoI extractors keep finest_scale 56, so every thing is pooled from the stride-4 level, the
# only one where it spans 7 or more cells); fewer proposals (1000 before NMS, 300 after) and 128
# sampled RoIs per image for scenes of 1-4 things; lr 5e-4 for the 8-image batch with a
# 50-iteration warm-up and steps at 300 and 375 over 400 iterations (the ViT run's schedule).
_base_ = [
    '../_base_/models/mask-rcnn_denseclip_clip-synthetic-tiny-fpn.py',
    '../_base_/datasets/synthetic_instance.py', '../_base_/schedules/schedule_400it_det.py'
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='DenseCLIPDetBackbone',
        clip=dict(model_name='clip-synthetic-tiny-rn', pretrained=None),  # packaged weights
        input_resolution=128,
        text_context_length=13,
        num_context=8,
        name_length=5,
        context_decoder=dict(width=256, num_heads=4, layers=3, dropout=0.1),
        tau=0.07))
