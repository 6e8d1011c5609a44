# The proving-ground detector (ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128.py: same
# training, same checkpoints) tested with the ViLD-image ensemble: each proposal's 1x and 1.5x crops
# scored by the frozen tiny CLIP and ensembled with the text head, w = 2/3 on the text head for the
# base classes (the 6 seen colours it was trained on) and on CLIP for the others (configs/ovdet).
_base_ = ['./ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128.py']

model = dict(
    image_ensemble=dict(weight=2 / 3, crop_scales=(1.0, 1.5),
                        base_classes={{_base_.seen_classes}}))
