_base_ = ['../_base_/datasets/coco_object.py']

model = dict(mode='clearclip')
