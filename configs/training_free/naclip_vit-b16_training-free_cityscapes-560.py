_base_ = ['../_base_/datasets/cityscapes.py']

model = dict(mode='naclip', naclip_std=5.0)
