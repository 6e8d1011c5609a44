# OVSeg R101c + CLIP ViT-B/16 (ovseg_r101c-vit-b16_120k_coco-stuff171-512.py's model and test
# resize) tested on PASCAL Context-59 with its ensemble weight (λ 0.6, ov-seg's); for
# tools/test.py.
_base_ = ['../_base_/models/ovseg_r101c-clip-vit-b16.py', '../_base_/datasets/context59.py',
          '../_base_/default_runtime.py']
model = dict(ensemble_weight=0.6)
test_dataloader = dict(dataset=dict(pipeline=_base_.ovseg_test_pipeline))
