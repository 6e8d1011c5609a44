# Proving ground: DenseCLIP Mask R-CNN on the synthetic scene world (data/synthetic, written by
# tools/make_synthetic_dataset.py), COCO boxes and instance masks (RLE) of the 8 colour things, with
# the tiny CLIP trained on that world (clip-synthetic-tiny: ViT, patch 8, width 128, packaged
# weights). A CPU-sized run, as retinanet_denseclip_clip-synthetic-tiny_800it_synthetic-128.py
# but half as long: 64-pixel scenes resized to 128, batch 8, 400 iterations (1.6 epochs of the
# 2000 training scenes; its RoI heads make an iteration about twice the RetinaNet's), evaluated by
# CocoMetric (boxes and masks) on the 500 test scenes. The test split holds seen colours only
# (pink and purple never appear in train/val/test).
#
# Built on the RN50 model of mask-rcnn_denseclip_r50_1x_coco.py; what differs, each for the tiny
# size, is listed in _base_/models/mask-rcnn_denseclip_clip-synthetic-tiny-fpn.py; lr 5e-4 for
# the 8-image batch with a 50-iteration warm-up and steps at 300 and 375
# (_base_/schedules/schedule_400it_det.py: the RetinaNet run's schedule halved).
_base_ = [
    '../_base_/models/mask-rcnn_denseclip_clip-synthetic-tiny-fpn.py',
    '../_base_/datasets/synthetic_instance.py', '../_base_/schedules/schedule_400it_det.py'
]
