# Proving ground: closed-set DenseCLIP on the synthetic world with the tiny CLIP trained on it,
# 400 CPU iterations on the train split (12 seen classes; all 14 names in the vocabulary, so the
# 14-channel score map of the published design), tested on the test split.
_base_ = [
    '../_base_/models/denseclip-fpn_clip-synthetic-tiny.py',
    '../_base_/datasets/synthetic.py', '../_base_/datasets/synthetic_train.py',
    '../_base_/schedules/schedule_400it.py'
]
