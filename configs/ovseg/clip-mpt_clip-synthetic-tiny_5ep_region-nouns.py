# Proving ground: mask prompt tuning of the packaged tiny CLIP (64-px input, patch 8: an 8x8
# grid of mask embeddings, depth 3) on the region-noun pairs that tools/mine_region_nouns.py
# mined from the synthetic train split's captions with a trained OVSeg; the published recipe
# otherwise (lr 0.05, no weight decay, 5 epochs of 32). Set model.clip.pretrained to a
# fine-tuned clip.pth (clip-finetune_clip-synthetic-tiny_5ep_region-nouns.py) to tune on top.
_base_ = ['../_base_/datasets/region_nouns.py', '../_base_/schedules/schedule_clip_tuning_5ep.py']
model = dict(type='RegionTextTuner', tune='mask_prompts', mask_prompt_depth=3,
             clip=dict(model_name='clip-synthetic-tiny', pretrained=None))
train_dataloader = dict(num_workers=1, dataset=dict(
    ann_file='data/synthetic/region_nouns/region_nouns.csv', size=64))
optim_wrapper = dict(optimizer=dict(lr=0.05, weight_decay=0.0))
