# ReCo as published (Shin et al., NeurIPS 2022; NoelShin/reco configs/reco_*.yaml): retrieval with
# CLIP ViT-L/14@336px over an index of ImageNet-1k train (1.28 M images), built by
#   python tools/build_retrieval_index.py data/imagenet/train \
#       data/reco/in1k-train_vit-l14-336 --model ViT-L-14-336 --weights openai
# co-segmentation of the k = 50 images of each name with DeiT-S/16 trained on Stylized-ImageNet
# (timm's deit_small_distilled_patch16_224 architecture, Naseer et al.'s deit_s_sin_dist.pth in
# checkpoints/), language guidance sigma(10 cos(g, t)) from CLIP RN50x16's MaskCLIP value path,
# context elimination over tree, sky, building, road, person ("vegetation" takes "tree"), the 85
# templates, archive images at 224 (resize + centre crop), ImageNet normalisation for every
# encoder, DenseCRF (10 iterations; Gaussian 1 / 3; bilateral 67 / 3 / 4) on softmax(S).
# slicing='paper' is the paper's per-image maximum; 'code' the reference code's columns (its
# released reference embeddings), see configs/reco/README.md.
model = dict(
    type='ReCoSegmentor',
    index='data/reco/in1k-train_vit-l14-336',
    retrieval=dict(model_name='ViT-L-14-336', pretrained='openai'),
    guidance=dict(model_name='RN50x16', pretrained='openai', mode='maskclip'),
    encoder=dict(model_name='timm/deit_small_distilled_patch16_224',
                 pretrained='checkpoints/deit_s_sin_dist.pth'),
    k=50,
    context=('tree', 'sky', 'building', 'road', 'person'),
    aliases=(('vegetation', 'tree'), ),
    slicing='paper',
    archive_size=224,
    templates='reco85',
    crf=dict(iterations=10, gaussian=(1.0, 3.0), bilateral=(67.0, 3.0, 4.0)),
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True))
