_base_ = ['../_base_/datasets/synthetic.py']

model = dict(mode='naclip', naclip_std=5.0)
