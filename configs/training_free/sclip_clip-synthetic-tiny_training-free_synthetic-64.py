_base_ = ['../_base_/datasets/synthetic.py']

model = dict(mode='sclip')
