# ADE20K val (2,000 images), 150 classes.
_base_ = ['./ov_seg_benchmark.py']

dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation')))
val_dataloader = test_dataloader
