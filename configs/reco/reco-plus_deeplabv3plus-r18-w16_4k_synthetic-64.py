# ReCo+ on the proving ground: a small DeepLabv3+ (ResNetV1c-18 at width 16, output stride 8,
# ASPP rates scaled with the crop, 12 / 24 / 36 x 64 / 320 -> 2 / 5 / 7) trained from scratch on
# ReCo's predictions of the synthetic world's train split (2,000 scenes; its labels are never
# read), written by
#   python tools/reco_pseudo_labels.py \
#       configs/reco/reco_clip-synthetic-tiny_training-free_synthetic-64.py \
#       --split images/train --out data/synthetic/reco_pseudo_labels/train
# ReCo+'s recipe at 64 px with a CPU-sized schedule: 4,000 iterations of batch 8 (16 epochs;
# about 5 minutes on 2 cores with OMP_NUM_THREADS=1), Adam (0.9, 0.999), weight decay 2e-4, lr 5e-4 for the whole network (the backbone starts from random
# weights here, so it does not get ReCo's 0.1x), poly 0.9 to 1e-6; random scale 0.5-2, mean
# padding, 64-px random crop, flip, Gaussian blur (p 0.5); no colour jitter: the world's object
# classes are colours. Tested on the test split (the novel split by --cfg-options, as ReCo's).
_base_ = ['../_base_/models/deeplabv3plus_r101-d8.py', '../_base_/datasets/synthetic.py',
          '../_base_/datasets/reco_plus_train.py', '../_base_/schedules/schedule_20k_reco_plus.py']

crop_size = (64, 64)
iterations = 4000
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16),
    decode_head=dict(in_channels=128, channels=64, dilations=(1, 2, 5, 7), c1_in_channels=16,
                     c1_channels=16, num_classes=14))
sizes = dict(RandomResize=dict(scale=crop_size), PadToSizeWithMean=dict(size=crop_size),
             RandomCrop=dict(crop_size=crop_size))
train_pipeline = [dict(step, **sizes.get(step.type, {}))
                  for step in _base_.reco_plus_train_pipeline
                  if step.type not in ('Resize', 'CenterCrop', 'RandomColorJitter')]
train_dataloader = dict(num_workers=2, dataset=dict(
    type='SyntheticSceneDataset', data_root='data/synthetic', pipeline=train_pipeline,
    data_prefix=dict(img_path='images/train', seg_map_path='reco_pseudo_labels/train')))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0)}))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, end=iterations)]
train_cfg = dict(max_iters=iterations, val_interval=iterations)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=iterations))
