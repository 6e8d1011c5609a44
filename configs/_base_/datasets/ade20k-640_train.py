# ADE20K-150 for training and evaluating a segmentor at 640x640 crops: ade20k_train.py with the
# (2048, 640) scale and 640-px crops for training, short side 640 for the test, and the
# multi-scale + flip test around (2048, 640). The model config pads to 640
# (data_preprocessor.size).
_base_ = ['./ade20k_train.py']

crop_size = (640, 640)
train_pipeline = _base_.train_pipeline
train_pipeline[2].scale = (2048, 640)  # RandomResize
train_pipeline[3].crop_size = crop_size  # RandomCrop
test_pipeline = _base_.test_pipeline
test_pipeline[1].scale = (2048, 640)  # Resize
tta_pipeline = _base_.tta_pipeline
tta_pipeline[1].transforms[0] = [  # TestTimeAug's scales
    dict(type='Resize', scale=(int(2048 * r), int(640 * r)), keep_ratio=True)
    for r in _base_.img_ratios
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
