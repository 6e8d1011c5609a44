_base_ = [
    '../_base_/models/training_free_vit-b16.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py'
]

model = dict(mode='clearclip', class_names='{{fileDirname}}/../_base_/names/ade20k.txt')
