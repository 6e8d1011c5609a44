# ReCo on the proving ground's test split (seen classes); the novel split (pink, purple) with
# --cfg-options test_dataloader.dataset.data_prefix.img_path=images/novel \
#     test_dataloader.dataset.data_prefix.seg_map_path=annotations/novel
_base_ = [
    '../_base_/models/reco_clip-synthetic-tiny.py', '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py'
]

model = dict(class_names='{{fileDirname}}/../_base_/names/synthetic.txt')
