# Runtime shared by every densevl config: mmseg scope, densevl modules, test-only loops.
default_scope = 'mmseg'
custom_imports = dict(imports=['densevl.models.mm_adapters', 'densevl.datasets.mm_datasets'], allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))

# The runner wants val_dataloader, val_cfg and val_evaluator all set or all unset; the
# dataset configs point val_dataloader at their test split.
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
# tools/test.py --tta wraps the model in it and runs the dataset config's tta_pipeline: mmseg's
# SegTTAModel (softmax averaged over the augmentations) that keeps the averaged probabilities.
tta_model = dict(type='MeanSoftmaxTTAModel')
