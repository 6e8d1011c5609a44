# DenseCLIP Mask R-CNN, CLIP RN50 (Rao et al., CVPR 2022; the DenseCLIP reference code
# detection/configs/mask_rcnn_denseclip_r50_fpn_1x_coco.py): the score map of the 80 COCO classes
# (cos / 0.07) concatenated to res5, auxiliary box-target loss (loss_aux_seg, weight 1),
# attention-pool positions for 1344-pixel inputs. Paper: 40.2 box AP, 37.6 mask AP on COCO val2017.
# Train from CLIP: model.backbone.clip.pretrained='openai' (downloads) or the path of RN50.pt.
# Evaluate a released checkpoint: tools/convert_denseclip_det_checkpoint.py, then tools/test.py.
_base_ = [
    '../_base_/models/mask-rcnn_denseclip_r50-fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_1x_det.py', '../_base_/default_runtime_det.py'
]

# AdamW lr 2e-4 (the schedule's multipliers and weight decay).
optim_wrapper = dict(optimizer=dict(lr=0.0002))
