# A CPU-sized detection schedule for the proving ground (128-px scenes, batch 8): 800 iterations
# (3.2 epochs of the 2000 training scenes) of AdamW, lr 5e-4 for the 8-image batch, weight decay
# 1e-4, gradient clipping at 0.1, a 100-iteration linear warm-up, lr x0.1 at iterations 600 and
# 750; DenseCLIP's per-module multipliers (schedule_1x_det.py). Logs every 20 iterations; one
# validation, at the end, and a checkpoint every 400 iterations (the last two kept).
_base_ = ['../default_runtime_det.py']

train_cfg = dict(type='IterBasedTrainLoop', max_iters=800, val_interval=800)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=800, by_epoch=False, milestones=[600, 750], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0005, weight_decay=0.0001),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'backbone.image_encoder': dict(lr_mult=0.1),
        'norm': dict(decay_mult=0.0)
    }))

log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=400, max_keep_ckpts=2))
