# COCO-Stuff 164k val2017 (5,000 images), 171 classes, short side 448.
_base_ = ['./ov_seg_benchmark.py']

dataset_type = 'COCOStuffDataset'
data_root = 'data/coco_stuff164k'
test_pipeline = _base_.test_pipeline
test_pipeline[1].scale = (2048, 448)  # Resize
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
val_dataloader = test_dataloader
