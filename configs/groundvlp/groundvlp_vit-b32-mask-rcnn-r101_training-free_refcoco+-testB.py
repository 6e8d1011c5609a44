# GroundVLP on RefCOCO+ (UNC split), testB: as the RefCOCO val config, another split.
_base_ = ['./groundvlp_vit-b32-mask-rcnn-r101_training-free_refcoco-val.py']

test_dataloader = dict(
    dataset=dict(data_root='data/refcoco+/', split_file='refs(unc).p', split='testB'))
