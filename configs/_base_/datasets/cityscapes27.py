# Cityscapes-27: Cityscapes val (500 images) over the 27 non-void labelIds (labelId - 7), at
# 320 x 320, with ReCo's metric (reco_protocol.py); the dataset's defaults read leftImg8bit/val
# and gtFine/val.
_base_ = ['./ov_seg_benchmark.py', './reco_protocol.py']

test_pipeline = _base_.reco_test_pipeline
test_dataloader = dict(dataset=dict(type='Cityscapes27Dataset', data_root='data/cityscapes',
                                    pipeline=test_pipeline))
val_dataloader = test_dataloader
