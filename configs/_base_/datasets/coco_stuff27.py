# COCO-Stuff-27: the 2,175 images of IIC's curated val2017 list, raw COCO-Stuff labels folded to
# 27 coarse classes, at 320 x 320 (reco_protocol.py); the dataset's defaults read the layout
# images/val2017, annotations/val2017 and curated/val2017/Coco164kFull_Stuff_Coarse.txt.
# ReCo predicts over the 171 fine names (densevl/datasets/names/coco_stuff171_reco.txt) and the
# metric folds its predictions to the 27 (fine_to_coarse='dataset'); a model that predicts the 27
# coarse names (densevl/datasets/names/coco_stuff27.txt) sets
# test_evaluator = dict(fine_to_coarse=None) after taking reco_evaluator.
_base_ = ['./ov_seg_benchmark.py', './reco_protocol.py']

test_pipeline = _base_.reco_test_pipeline
test_dataloader = dict(dataset=dict(type='COCOStuff27Dataset', data_root='data/cocostuff',
                                    pipeline=test_pipeline))
val_dataloader = test_dataloader
reco_evaluator = dict(fine_to_coarse='dataset')
