_base_ = ['../_base_/datasets/cityscapes.py']

model = dict(mode='sclip')
