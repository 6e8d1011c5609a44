_base_ = ['../_base_/datasets/context60.py']

model = dict(mode='clearclip')
