# A CPU-sized detection schedule for the proving ground (128-px scenes, batch 8): 800 iterations
# (3.2 epochs of the 2000 training scenes) of adamw_synthetic_det.py (AdamW, lr 5e-4), a
# 100-iteration linear warm-up, lr x0.1 at iterations 600 and 750. Logs every 20 iterations; one
# validation, at the end, and a checkpoint every 400 iterations (the last two kept).
_base_ = ['../default_runtime_det.py', './adamw_synthetic_det.py']

train_cfg = dict(type='IterBasedTrainLoop', max_iters=800, val_interval=800)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=800, by_epoch=False, milestones=[600, 750], gamma=0.1)
]
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=400, max_keep_ckpts=2))
