# ReCo+'s training data (NoelShin/reco datasets/*.py with use_augmentation, base_dataset.py): the
# benchmark's train images with ReCo's pseudo-labels (tools/reco_pseudo_labels.py, written at the
# 320 x 320 centre crop, or full resolution for KITTI-STEP), batch 8: short side resized to 320
# and centre-cropped (the labels follow; a 320 x 320 label map stays as it is), random scale
# 0.5-2, padding to 320 with the image's mean colour (labels: ignored), a random 320 x 320 crop,
# horizontal flip (p 0.5), colour jitter (brightness, contrast, saturation 0.8, hue 0.2; p 0.8),
# Gaussian blur (p 0.5, kernel 10 % of the side, sigma 0.1-2). A config adds the dataset
# (type, data_root, data_prefix with seg_map_path at the pseudo-labels).
reco_plus_crop = (320, 320)
reco_plus_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(32000, 320), keep_ratio=True),
    dict(type='CenterCrop', crop_size=320),
    dict(type='RandomResize', scale=reco_plus_crop, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='PadToSizeWithMean', size=reco_plus_crop),
    dict(type='RandomCrop', crop_size=reco_plus_crop),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomColorJitter', brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2,
         prob=0.8),
    dict(type='RandomGaussianBlur', prob=0.5, sigma=(0.1, 2.0), kernel_ratio=0.1),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=8, num_workers=8, persistent_workers=True,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(pipeline=reco_plus_train_pipeline))
