# ADE20K-full val (2,000 images), 847 classes, in the layout ov-seg's
# datasets/prepare_ade20k_full_sem_seg.py writes: 16-bit label maps whose ignore label is 65535,
# so a config testing on it sets test_evaluator = dict(ignore_index=65535).
_base_ = ['./ov_seg_benchmark.py']

test_dataloader = dict(
    dataset=dict(
        type='ADE20K847Dataset',
        data_root='data/ADE20K_2021_17_01',
        data_prefix=dict(img_path='images_detectron2/validation',
                         seg_map_path='annotations_detectron2/validation')))
val_dataloader = test_dataloader
