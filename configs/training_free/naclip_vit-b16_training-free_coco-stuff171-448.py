_base_ = ['../_base_/datasets/coco_stuff171.py']

model = dict(mode='naclip', naclip_std=5.0)
