# ReCo+'s schedule (NoelShin/reco networks/reco_plus.py, utils/scheduler.py): 20k iterations of
# batch 8, Adam (betas 0.9 / 0.999, weight decay 2e-4), lr 5e-4 for the head and 5e-5 for the
# backbone, poly decay (power 0.9) to 1e-6. The reference clamps each group's lr at 1e-6
# (max(lr_0 (1 - t/T)^0.9, 1e-6)); mmengine's PolyLR decays to eta_min instead, which differs by
# at most 1e-6. It validates every 1,000 iterations and keeps the best checkpoint by validation
# mIoU; here every 2,000 with the last checkpoint kept (no selection on labelled data). Scored
# with ReCo's metric (reco_protocol.py; ReCo+ predicts the benchmark's classes, nothing to fold),
# in place of default_runtime.py's IoUMetric.
_base_ = ['../default_runtime.py']

test_evaluator = dict(_delete_=True, type='ReCoIoUMetric')
val_evaluator = test_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=5e-4, betas=(0.9, 0.999), weight_decay=2e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=0, end=20000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=2000)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000))
