# OVSeg Swin-B + CLIP ViT-L/14 (ovseg_swin-b-vit-l14_120k_coco-stuff171-640.py's model and test
# resize) tested on PASCAL Context-59 with its ensemble weight (λ 0.6, ov-seg's); for
# tools/test.py.
_base_ = ['../_base_/models/ovseg_swin-b-clip-vit-l14.py', '../_base_/datasets/context59.py',
          '../_base_/default_runtime.py']
model = dict(ensemble_weight=0.6)
test_dataloader = dict(dataset=dict(pipeline=_base_.ovseg_test_pipeline))
