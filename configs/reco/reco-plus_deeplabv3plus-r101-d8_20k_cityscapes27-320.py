# ReCo+ on Cityscapes-27: DeepLabv3+ trained on ReCo's predictions of the 2,975 train images,
# written by
#   python tools/reco_pseudo_labels.py \
#       configs/reco/reco_vit-l14-deit-s-rn50x16_training-free_cityscapes27-320.py \
#       --split leftImg8bit/train --out data/cityscapes/reco_pseudo_labels/train
# Paper: 83.7 aAcc / 24.2 mIoU.
_base_ = ['../_base_/models/deeplabv3plus_r101-d8.py', '../_base_/datasets/cityscapes27.py',
          '../_base_/datasets/reco_plus_train.py', '../_base_/schedules/schedule_20k_reco_plus.py']

model = dict(decode_head=dict(num_classes=27))
train_dataloader = dict(dataset=dict(
    type='Cityscapes27Dataset', data_root='data/cityscapes',
    data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='reco_pseudo_labels/train')))
