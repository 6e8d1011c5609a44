_base_ = ['../_base_/datasets/voc21.py']

model = dict(mode='naclip', naclip_std=5.0)
