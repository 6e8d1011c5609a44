# Proving ground: the CLIP-FPN baseline (the tiny CLIP's pyramid as a plain backbone, no text)
# under the same FPN, schedule and data as denseclip_clip-synthetic-tiny_400it_synthetic-64.py.
_base_ = [
    '../_base_/models/clip-fpn_clip-synthetic-tiny.py',
    '../_base_/datasets/synthetic.py', '../_base_/datasets/synthetic_train.py',
    '../_base_/schedules/schedule_400it.py'
]
