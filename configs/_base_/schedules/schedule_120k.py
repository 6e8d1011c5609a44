# OVSeg's schedule (ov-seg train_net.py and its yamls): 120k iterations of AdamW for 32 images a
# step; poly decay (power 0.9, to 0) with a 1500-iteration linear warm-up from 1e-6x multiplied
# onto it (detectron2's WarmupPolyLR); no weight decay on norm layers, embeddings (the queries)
# and Swin's relative position tables; the whole model's gradient norm clipped to 0.01
# (CLIP_TYPE full_model); validation and checkpoints every 5000 iterations. The leaves set the
# recipe's lr, weight decay and backbone lr multiplier.
_base_ = ['../default_runtime.py']

train_cfg = dict(type='IterBasedTrainLoop', max_iters=120000, val_interval=5000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0, end=120000),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={
        'query_embed': dict(decay_mult=0.0),
        'relative_position_bias_table': dict(decay_mult=0.0),
        'absolute_pos_embed': dict(decay_mult=0.0),
    }))
auto_scale_lr = dict(enable=False, base_batch_size=32)
