_base_ = ['../_base_/datasets/coco_stuff171.py']

model = dict(mode='maskclip')
