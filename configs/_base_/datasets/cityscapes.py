# Cityscapes val (500 images), 19 classes, short side 560.
_base_ = ['./ov_seg_benchmark.py']

dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes'
test_pipeline = _base_.test_pipeline
test_pipeline[1].scale = (2048, 560)  # Resize
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
val_dataloader = test_dataloader
