# DenseCLIP's ADE20K schedule (segmentation/configs/denseclip_fpn_*_80k.py): 80k iterations of
# AdamW, lr 1e-4 and weight decay 1e-4 for 32 images a step (8 GPUs x 4), the CLIP image encoder
# at 0.1x lr, no weight decay on parameters named "norm" (the context decoder's), poly decay
# (power 0.9, to 1e-6) with a 1500-iteration linear warm-up from 1e-6x multiplied onto it, as
# mmcv's warm-up does; validation and checkpoints every 8000 iterations. The frozen text tower
# has requires_grad=False (DenseCLIP: lr_mult 0), so only its context vectors train.
_base_ = ['../default_runtime.py']

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={
        'image_encoder': dict(lr_mult=0.1),  # DenseCLIPSegmentor.core.image_encoder
        'backbone': dict(lr_mult=0.1),  # the CLIP-FPN baseline's image encoder
        'norm': dict(decay_mult=0.0),
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=0, end=80000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000))
auto_scale_lr = dict(enable=False, base_batch_size=32)
