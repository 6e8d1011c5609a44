_base_ = ['../_base_/datasets/voc21.py']

model = dict(mode='clearclip')
