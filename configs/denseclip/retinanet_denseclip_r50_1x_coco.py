# DenseCLIP RetinaNet, CLIP RN50 (Rao et al., CVPR 2022; the DenseCLIP reference code
# detection/configs/retinanet_denseclip_r50_fpn_1x_coco.py): the score map of the 80 COCO classes
# (cos / 0.07) concatenated to res5, auxiliary box-target loss (loss_seg, weight 1), attention-pool
# positions for 1344-pixel inputs; AdamW lr 1e-4. Paper: 37.8 box AP on COCO val2017.
# Train from CLIP: model.backbone.clip.pretrained='openai' (downloads) or the path of RN50.pt.
# Evaluate a released checkpoint: tools/convert_denseclip_det_checkpoint.py, then tools/test.py.
_base_ = [
    '../_base_/models/retinanet_denseclip_r50-fpn.py', '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x_det.py', '../_base_/default_runtime_det.py'
]
