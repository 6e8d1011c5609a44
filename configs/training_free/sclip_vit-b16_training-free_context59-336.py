_base_ = ['../_base_/datasets/context59.py']

model = dict(mode='sclip')
