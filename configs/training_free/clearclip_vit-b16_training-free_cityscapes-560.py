_base_ = [
    '../_base_/models/training_free_vit-b16.py', '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py'
]

model = dict(mode='clearclip', class_names='{{fileDirname}}/../_base_/names/cityscapes.txt')
