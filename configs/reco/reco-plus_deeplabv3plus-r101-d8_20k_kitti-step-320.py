# ReCo+ on KITTI-STEP: DeepLabv3+ trained on ReCo's full-resolution predictions of the train
# frames (KITTI-STEP's panoptic PNGs, red = label), written by
#   python tools/reco_pseudo_labels.py \
#       configs/reco/reco_vit-l14-deit-s-rn50x16_training-free_kitti-step-full.py \
#       --split train --out data/kitti_step/reco_pseudo_labels/train
# then trained on 320 x 320 crops as the other benchmarks, tested at full resolution. Paper:
# 75.3 aAcc / 31.9 mIoU.
_base_ = ['../_base_/models/deeplabv3plus_r101-d8.py', '../_base_/datasets/kitti_step.py',
          '../_base_/datasets/reco_plus_train.py', '../_base_/schedules/schedule_20k_reco_plus.py']

model = dict(decode_head=dict(num_classes=19))
train_dataloader = dict(dataset=dict(
    type='KittiStepDataset', data_root='data/kitti_step',
    data_prefix=dict(img_path='train', seg_map_path='reco_pseudo_labels/train'),
    pipeline=[dict(type='LoadKittiStepAnnotations') if step.type == 'LoadAnnotations' else step
              for step in _base_.reco_plus_train_pipeline]))
