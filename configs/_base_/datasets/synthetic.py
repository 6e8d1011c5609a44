# The synthetic scene world (tools/make_synthetic_dataset.py --out data/synthetic): 6 stuff
# textures + 8 colour things, 64-px scenes, ADE20K layout. The test split holds seen classes
# only; point data_prefix at images/novel + annotations/novel for the unseen pink and purple.
_base_ = ['../models/training_free_clip-synthetic-tiny.py', '../default_runtime.py']

model = dict(class_names='{{fileDirname}}/../names/synthetic.txt')

dataset_type = 'SyntheticSceneDataset'
data_root = 'data/synthetic'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/test', seg_map_path='annotations/test'),
        pipeline=test_pipeline))
val_dataloader = test_dataloader
