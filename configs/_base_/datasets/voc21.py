# PASCAL VOC 2012 val (1,449 images), 21 classes with background scored.
_base_ = ['./ov_seg_benchmark.py']

dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt'))
val_dataloader = test_dataloader
