_base_ = ['../_base_/datasets/voc20.py']

model = dict(mode='maskclip')
