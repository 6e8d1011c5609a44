_base_ = ['../_base_/datasets/voc20.py']

model = dict(mode='naclip', naclip_std=5.0)
