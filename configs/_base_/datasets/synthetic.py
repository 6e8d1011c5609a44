# The synthetic scene world (tools/make_synthetic_dataset.py --out data/synthetic): 6 stuff
# textures + 8 colour things, 64-px scenes, ADE20K layout, in the benchmarks' test protocol at
# the scenes' native size (no resize), 8 scenes a step. Test (and validation): the test split,
# seen classes only; point data_prefix at images/novel + annotations/novel for the scenes that
# hold the unseen pink and purple. synthetic_train.py adds the train split.
_base_ = ['./ov_seg_benchmark.py']

dataset_type = 'SyntheticSceneDataset'
data_root = 'data/synthetic'
test_pipeline = [step for step in _base_.test_pipeline if step.type != 'Resize']
test_dataloader = dict(
    batch_size=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/test', seg_map_path='annotations/test'),
        pipeline=test_pipeline))
val_dataloader = test_dataloader
