# A CPU-sized segmentation schedule for the proving ground (64-px scenes, batch 8): 400
# iterations of AdamW, lr 1e-3 (the heads start from scratch and have little time), weight decay
# 1e-4, the CLIP image encoder at 0.1x lr, no weight decay on "norm" parameters, poly decay with
# a 40-iteration linear warm-up; one validation and one checkpoint, at the end.
_base_ = ['../default_runtime.py']

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={
        'image_encoder': dict(lr_mult=0.1),
        'backbone': dict(lr_mult=0.1),
        'norm': dict(decay_mult=0.0),
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=40),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=0, end=400),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400, val_interval=400)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=400))
auto_scale_lr = dict(enable=False, base_batch_size=8)
