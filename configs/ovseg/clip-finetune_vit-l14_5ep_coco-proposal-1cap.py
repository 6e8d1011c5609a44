# OVSeg's CLIP fine-tuning (ov-seg open_clip_training/src/scripts/coco_proposal_1cap_finetune_
# VitL.sh): OpenAI's ViT-L/14 (QuickGELU), the image tower trained on the region-noun pairs of
# COCO's captions with the text tower locked; AdamW lr 5e-6, weight decay 0.2, 5 epochs of 32.
# Mine the pairs with tools/mine_region_nouns.py; the tuned CLIP is written to the work dir as
# clip.pth (model.clip.pretrained of the OVSeg configs, with model.clip.model_name unchanged).
_base_ = ['../_base_/datasets/region_nouns.py', '../_base_/schedules/schedule_clip_tuning_5ep.py']
model = dict(type='RegionTextTuner', tune='image_tower',
             clip=dict(model_name='ViT-L-14-quickgelu', pretrained='openai'))
train_dataloader = dict(dataset=dict(ann_file='data/coco_proposal_1cap/region_nouns.csv'))
