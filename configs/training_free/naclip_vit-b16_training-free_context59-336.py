_base_ = ['../_base_/datasets/context59.py']

model = dict(mode='naclip', naclip_std=5.0)
