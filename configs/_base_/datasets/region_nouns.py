# Region-noun pairs (tools/mine_region_nouns.py --out DATA_ROOT): masked crops and their nouns,
# batches of 32 random resized crops (90-100 % of the area, bicubic) at the CLIP input size.
data_root = 'data/region_nouns'
crop_size = 224
train_dataloader = dict(
    dataset=dict(type='RegionTextDataset', ann_file=data_root + '/region_nouns.csv',
                 size=crop_size),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'), batch_size=32, num_workers=2)
