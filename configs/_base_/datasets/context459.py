# PASCAL Context val (5,105 images), all 459 classes, in the layout ov-seg's
# datasets/prepare_pascal_context.py writes: 16-bit label maps whose ignore label is 65535 (set
# test_evaluator = dict(ignore_index=65535)); the samples are the label maps, the images VOC2010's.
_base_ = ['./ov_seg_benchmark.py']

test_dataloader = dict(
    dataset=dict(
        type='PascalContext459Dataset',
        data_root='data/VOCdevkit/VOC2010',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='annotations_detectron2/pc459_val')))
val_dataloader = test_dataloader
