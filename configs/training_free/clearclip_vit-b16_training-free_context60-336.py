_base_ = [
    '../_base_/models/training_free_vit-b16.py', '../_base_/datasets/context60.py',
    '../_base_/default_runtime.py'
]

model = dict(mode='clearclip', class_names='{{fileDirname}}/../_base_/names/context60.txt',
             prob_threshold=0.1)
