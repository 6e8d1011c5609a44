# Contrastive tuning of a CLIP on region-noun pairs (OVSeg's open_clip_training, both stages):
# AdamW with betas (0.9, 0.98) and eps 1e-6, 100 warm-up iterations then cosine decay, 5 epochs,
# no weight decay on gains, biases and the class embedding; a leaf config sets the learning rate
# and weight decay of its stage. There is no validation: the tuned CLIP is judged inside OVSeg
# (tools/test.py with model.clip.pretrained / model.clip.mask_embedding set to the files that
# ExportTunedCLIPHook writes into the work dir when training ends).
_base_ = ['../default_runtime.py']

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-6, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'class_embedding': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=5, val_interval=100)
val_cfg = val_evaluator = val_dataloader = None
test_cfg = test_evaluator = test_dataloader = None
log_processor = dict(by_epoch=True)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=5))
custom_hooks = [dict(type='ExportTunedCLIPHook')]
