_base_ = [
    '../_base_/models/training_free_vit-b16.py', '../_base_/datasets/coco_stuff171.py',
    '../_base_/default_runtime.py'
]

model = dict(mode='sclip', class_names='{{fileDirname}}/../_base_/names/coco_stuff171.txt')
