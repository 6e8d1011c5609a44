# OVSeg R101c + CLIP ViT-B/16 (ov-seg configs/ovseg_R101c_vitB_bs32_120k.yaml): trained on
# COCO-Stuff-171 (512-px crops, 120k iterations of 32, AdamW lr 2e-4, weight decay 1e-4, the
# backbone at 0.1x lr), tested on ADE20K-150 (λ 0.7). The *_test-*.py configs beside it test on
# ADE-847, PC-459, PC-59 and VOC-20 (paper: 7.1 / 11.0 / 24.8 / 53.3 / 92.6 mIoU on
# A-847 / PC-459 / A-150 / PC-59 / VOC-20).
_base_ = [
    '../_base_/models/ovseg_r101c-clip-vit-b16.py', '../_base_/datasets/coco_stuff171_train.py',
    '../_base_/schedules/schedule_120k.py'
]
optim_wrapper = dict(optimizer=dict(lr=2e-4, weight_decay=1e-4),
                     paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
