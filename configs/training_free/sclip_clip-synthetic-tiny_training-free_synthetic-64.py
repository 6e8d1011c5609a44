_base_ = [
    '../_base_/models/training_free_clip-synthetic-tiny.py', '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py'
]

model = dict(mode='sclip', class_names='{{fileDirname}}/../_base_/names/synthetic.txt')
