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

# AdamW lr 2e-4, weight decay 1e-4; the CLIP image tower at 0.1x lr; no weight decay on the
# context decoder's norms. The text tower is frozen (requires_grad=False: DenseCLIP's lr_mult 0),
# its learned contexts train at 1x.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=0.0002, weight_decay=0.0001),
    paramwise_cfg=dict(custom_keys={
        'backbone.image_encoder': dict(lr_mult=0.1),
        'norm': dict(decay_mult=0.0)
    }))
