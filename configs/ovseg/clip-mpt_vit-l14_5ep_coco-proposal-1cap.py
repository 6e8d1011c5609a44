# OVSeg's mask prompt tuning (ov-seg open_clip_training/src/scripts/coco_proposal_1cap_mask_
# prompt_tuning_VitL.sh): on top of the fine-tuned ViT-L/14, only the mask embedding (depth 3)
# trains, lr 0.05 without weight decay, 5 epochs of 32; the work dir receives clip.pth and
# clip.mask_embedding.pth (model.clip.pretrained and model.clip.mask_embedding of OVSeg).
_base_ = ['../_base_/datasets/region_nouns.py', '../_base_/schedules/schedule_clip_tuning_5ep.py']
model = dict(type='RegionTextTuner', tune='mask_prompts', mask_prompt_depth=3, clip=dict(
    model_name='ViT-L-14-quickgelu',
    pretrained='work_dirs/clip-finetune_vit-l14_5ep_coco-proposal-1cap/clip.pth'))
train_dataloader = dict(dataset=dict(ann_file='data/coco_proposal_1cap/region_nouns.csv'))
optim_wrapper = dict(optimizer=dict(lr=0.05, weight_decay=0.0))
