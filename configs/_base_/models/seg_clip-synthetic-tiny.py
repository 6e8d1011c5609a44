# The setting every trained proving-ground segmentor uses: the tiny CLIP trained on the synthetic
# world (clip-synthetic-tiny, packaged weights), its 14 classes, whole-image test, CLIP's mean and
# std, 64-px scenes. ovseg_clip-synthetic-tiny.py inherits it; clip-fpn_clip-synthetic-tiny.py
# spells the same values out, since DenseCLIP's tiny base inherits that one and a fourth level of
# inheritance is one too many.
model = dict(
    clip=dict(model_name='clip-synthetic-tiny', pretrained=None),  # packaged weights
    class_names='SyntheticSceneDataset',  # its 14 classes
    train_cfg=dict(),
    test_cfg=dict(mode='whole'),
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[122.771, 116.746, 104.094],
        std=[68.501, 66.632, 70.323],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(64, 64)))
