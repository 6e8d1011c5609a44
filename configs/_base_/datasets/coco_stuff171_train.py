# COCO-Stuff-171 (164k train2017, mmseg's *_labelTrainIds.png) for training OVSeg's R101c recipe
# (the detectron2 defaults its yaml keeps: short side 800, long side at most 1333), random 512-px
# crop (no single-class limit), photometric distortion (SSD's colour augmentation), flip; 4
# images per GPU (8 GPUs: batch 32). Validation and test: ADE20K-150 at short side 512 (long
# side at most 2048), the recipe's test, as ade20k_train.py has it. The Swin-B recipe's leaf
# changes the resize and the crop.
_base_ = ['./ade20k_train.py']

train_pipeline = _base_.train_pipeline
train_pipeline[1] = dict(type='LoadAnnotations')
train_pipeline[2] = dict(type='ResizeShortestEdge', scale=800, max_size=1333)
train_pipeline[3].cat_max_ratio = 1.0  # RandomCrop
train_dataloader = dict(dataset=dict(
    type='COCOStuffDataset', data_root='data/coco_stuff164k', pipeline=train_pipeline,
    data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017')))
