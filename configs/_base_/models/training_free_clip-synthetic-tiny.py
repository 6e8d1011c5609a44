# Training-free segmentor on the proving ground's tiny CLIP (trained on the synthetic world by
# tools/train_tiny_clip.py, shipped in densevl/model_zoo): native 64-px scenes, one whole-image
# forward, bare class words as prompts.
model = dict(
    type='TrainingFreeSegmentor',
    clip=dict(model_name='clip-synthetic-tiny', pretrained=None),
    mode='maskclip',
    templates=['{}'],
    logit_scale=40.0,
    prob_threshold=0.0,
    background_index=0,
    slide=None,
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[122.771, 116.746, 104.094],
        std=[68.501, 66.632, 70.323],
        bgr_to_rgb=True))
