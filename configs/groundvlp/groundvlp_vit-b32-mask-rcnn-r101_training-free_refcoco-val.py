# GroundVLP (zero-shot grounding, training-free) on RefCOCO (UNC split, val); the other splits
# and RefCOCO+ / RefCOCOg inherit this file and change the data. Heat maps and the subject ->
# category mapping from CLIP ViT-B/32 (OpenAI weights, the reference's mapping model; another
# open_clip CLIP with --cfg-options model.clip=RN50x16 model.clip_weights=openai); detector slot:
# the COCO-trained DenseCLIP Mask R-CNN R101 (configs/denseclip/README_detection.md converts its
# released checkpoint), standing in for the reference's Detic. The subject's head noun is mapped
# to a COCO category (GroundVLP's rule). Data layout: configs/groundvlp/README.md.
_base_ = ['../_base_/default_runtime_det.py', '../_base_/datasets/refcoco_grounding.py']

model = dict(
    type='GroundVLP',
    clip='ViT-B-32',
    clip_weights='openai',
    detector=dict(config='{{fileDirname}}/../denseclip/mask-rcnn_denseclip_r101_1x_coco.py',
                  weights='checkpoints/mask-rcnn_denseclip_r101_1x_coco.pth'),
    category_mode='predicted',  # 'gt': the dataset's category, not strictly zero-shot
    category_from='subject',
    predicted_score_thr=0.3,
    gt_score_thr=0.15)
