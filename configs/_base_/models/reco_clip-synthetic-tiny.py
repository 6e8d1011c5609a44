# ReCo on the proving ground (configs/reco/README.md): the published recipe with the synthetic
# world's models. The retrieval index is the world's unlabeled collection (2,000 scenes, every
# colour) embedded by the packaged tiny CLIP:
#   python tools/build_retrieval_index.py data/synthetic/unlabeled/images \
#       data/reco/unlabeled_clip-synthetic-tiny --model clip-synthetic-tiny
# the tiny CLIP's own ViT tower (final-LN patch tokens, 8 x 8 per 64-px scene) gives the
# co-segmentation features and its ResNet twin's MaskCLIP value path (clip-synthetic-tiny-rn, the
# proving ground's best-localising training-free model; a 2 x 2 grid at 64 px, upsampled) the
# language guidance (the ViT's own MaskCLIP path: guidance.model_name='clip-synthetic-tiny',
# weaker, see the README). Archive and test
# images at the scenes' 64 px, normalised as the tiny CLIP was trained; bare class words as
# prompts (as the other proving-ground configs); the world's six backgrounds play the part of
# ReCo's context categories (tree, building, road and person are words the tiny CLIP never saw);
# k = 50 of 2,000 images (2.5 %; ReCo: 50 of 1.28 M).
_base_ = ['./reco_vit-l14-336_deit-s-sin_rn50x16.py']

model = dict(
    index='data/reco/unlabeled_clip-synthetic-tiny',
    retrieval=dict(model_name='clip-synthetic-tiny', pretrained=None),
    guidance=dict(model_name='clip-synthetic-tiny-rn', pretrained=None),
    encoder=dict(model_name='clip-synthetic-tiny', pretrained=None),
    context=('sky', 'grass', 'water', 'sand', 'brick', 'wood'),
    aliases=(),
    archive_size=64,
    templates=['{}'],
    data_preprocessor=dict(mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323]))
