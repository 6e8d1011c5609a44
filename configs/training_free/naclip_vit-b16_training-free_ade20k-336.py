_base_ = [
    '../_base_/models/training_free_vit-b16.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py'
]

model = dict(mode='naclip', naclip_std=5.0,
             class_names='{{fileDirname}}/../_base_/names/ade20k.txt')
