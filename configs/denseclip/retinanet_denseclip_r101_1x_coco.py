# DenseCLIP RetinaNet, CLIP RN101 (the DenseCLIP reference code
# detection/configs/retinanet_denseclip_r101_fpn_1x_coco.py). As the RN50 config with the RN101
# tower (same level widths; 512-d joint space). Published: 41.1 box AP on COCO val2017.
_base_ = ['./retinanet_denseclip_r50_1x_coco.py']

model = dict(backbone=dict(clip=dict(model_name='RN101', pretrained='openai')))
