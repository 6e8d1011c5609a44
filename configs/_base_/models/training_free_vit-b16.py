# Training-free CLIP ViT-B/16 segmentor; a leaf config picks `mode` and adds the vocabulary (a
# names file) and, on sets with a background class, the background threshold.
model = dict(
    type='TrainingFreeSegmentor',
    clip=dict(model_name='ViT-B-16', pretrained='openai'),
    mode='maskclip',
    templates='imagenet80',
    logit_scale=40.0,
    prob_threshold=0.0,
    background_index=0,
    slide=dict(crop=224, stride=112),
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[122.771, 116.746, 104.094],
        std=[68.501, 66.632, 70.323],
        bgr_to_rgb=True))
