# DenseCLIP's detection schedule (COCO 1x): 12 epochs, AdamW (lr 1e-4, weight decay 1e-4; the
# method configs may change lr), gradient clipping at 0.1, 500-iter linear warm-up, lr x0.1 after
# epochs 8 and 11; lr is for 16 images per step (8 GPUs x 2). The CLIP image tower trains at
# 0.1x lr, the context decoder's norms without weight decay; the text tower is frozen
# (requires_grad=False: DenseCLIP's lr_mult 0), its learned contexts train at 1x.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.0001),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'backbone.image_encoder': dict(lr_mult=0.1),
        'norm': dict(decay_mult=0.0)
    }))

auto_scale_lr = dict(enable=False, base_batch_size=16)
