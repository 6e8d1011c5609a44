_base_ = [
    '../_base_/models/training_free_vit-b16.py', '../_base_/datasets/voc21.py',
    '../_base_/default_runtime.py'
]

model = dict(mode='clearclip', class_names='{{fileDirname}}/../_base_/names/voc21.txt',
             prob_threshold=0.1)
