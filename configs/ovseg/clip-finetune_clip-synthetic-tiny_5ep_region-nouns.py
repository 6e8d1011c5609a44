# Proving ground: fine-tuning the packaged tiny CLIP's image tower on the region-noun pairs of
# the synthetic train split (see clip-mpt_clip-synthetic-tiny_5ep_region-nouns.py): the
# published recipe (AdamW lr 5e-6, weight decay 0.2, 5 epochs of 32).
_base_ = ['../_base_/datasets/region_nouns.py', '../_base_/schedules/schedule_clip_tuning_5ep.py']
model = dict(type='RegionTextTuner', tune='image_tower',
             clip=dict(model_name='clip-synthetic-tiny', pretrained=None))
train_dataloader = dict(num_workers=1, dataset=dict(
    ann_file='data/synthetic/region_nouns/region_nouns.csv', size=64))
