# Proving ground: the open-vocabulary Faster R-CNN (configs/ovdet/README.md) on the synthetic scene
# world (data/synthetic, written by tools/make_synthetic_dataset.py), COCO boxes of its colour
# things. Trained on the 2000 train scenes with the vocabulary of the 6 SEEN colours (the train
# split never shows pink or purple); validated and tested on the 500 test scenes with all 8 thing
# names (the model takes each loop's dataset classes). Unseen AP: tools/benchmark_quality.py
# tests the novel split with the 8 names and averages CocoMetric's per-class AP of pink and
# purple. 800 iterations of batch 8 (_base_/schedules/schedule_800it_det.py), the CLIP tower
# at a tenth of the learning rate.
_base_ = [
    '../_base_/models/ovdet-faster-rcnn_clip-synthetic-tiny-fpn.py',
    '../_base_/datasets/synthetic_detection.py', '../_base_/schedules/schedule_800it_det.py'
]
seen_classes = ('red', 'orange', 'yellow', 'green', 'blue', 'white')

train_dataloader = dict(dataset=dict(metainfo=dict(classes=seen_classes)))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone.encoder': dict(lr_mult=0.1)}))
