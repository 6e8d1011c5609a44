# The optimizer and the val / test loops of the proving ground's detection schedules
# (schedule_800it_det.py, schedule_400it_det.py; 128-px scenes, batch 8): AdamW, lr 5e-4 for the
# 8-image batch, weight decay 1e-4, gradient clipping at 0.1, DenseCLIP's per-module multipliers
# (schedule_1x_det.py).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0005, weight_decay=0.0001),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'backbone.image_encoder': dict(lr_mult=0.1),
        'norm': dict(decay_mult=0.0)
    }))
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
