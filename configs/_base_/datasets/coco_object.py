# COCO-Object val2017 (5,000 images), 80 things + background scored.
# Label maps: datasets/cvt_coco_object.py of SCLIP/NACLIP, written beside COCO-Stuff's.
_base_ = ['./ov_seg_benchmark.py']

dataset_type = 'COCOObjectDataset'
data_root = 'data/coco_stuff164k'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017')))
val_dataloader = test_dataloader
