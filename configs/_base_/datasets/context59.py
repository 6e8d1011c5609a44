# PASCAL Context val (5,105 images), 59 classes; background pixels ignored.
_base_ = ['./ov_seg_benchmark.py']

dataset_type = 'PascalContextDataset59'
data_root = 'data/VOCdevkit/VOC2010'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        ann_file='ImageSets/SegmentationContext/val.txt'))
val_dataloader = test_dataloader
