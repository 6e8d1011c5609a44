# GroundVLP on RefCOCOg (UMD split), test: as the RefCOCO val config, another split.
_base_ = ['./groundvlp_vit-b32-mask-rcnn-r101_training-free_refcoco-val.py']

test_dataloader = dict(
    dataset=dict(data_root='data/refcocog/', split_file='refs(umd).p', split='test'))
