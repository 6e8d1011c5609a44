# schedule_800it_det.py halved for the proving ground's Mask R-CNNs, whose RoI heads make them the
# dearest trainings of the quality table: 400 iterations (1.6 epochs of the 2000 training scenes
# at batch 8) of adamw_synthetic_det.py (AdamW, lr 5e-4), the warm-up and the steps scaled with
# the length: a 50-iteration linear warm-up, lr x0.1 at iterations 300 and 375. Logs every 20
# iterations; a checkpoint every 200 iterations (so an interrupted run resumes; the last two kept).
_base_ = ['../default_runtime_det.py', './adamw_synthetic_det.py']

train_cfg = dict(type='IterBasedTrainLoop', max_iters=400, val_interval=400)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=400, by_epoch=False, milestones=[300, 375], gamma=0.1)
]
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=2))
