_base_ = ['../_base_/datasets/context60.py']

model = dict(mode='naclip', naclip_std=5.0)
