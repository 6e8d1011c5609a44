# Open-vocabulary Faster R-CNN (OpenVocabFasterRCNN) sized for the proving ground: mmdet's
# faster-rcnn_r50_fpn with the tiny CLIP trained on the synthetic world (clip-synthetic-tiny: ViT,
# patch 8, width 128, packaged weights) as its backbone, and a box classifier made of that CLIP's
# text embeddings of the names of each call (TextEmbeddingBBoxHead: cos * 50 with a learned
# background embedding, class-agnostic regression). For the tiny size: CLIP's normalisation, FPN,
# RPN and RoI head at 64 channels, the box head's fc layers 256 wide, RPN anchors a quarter as
# large (scales=[2]: 8-128 px for the 6-58 px things of 128-px scenes), every RoI pooled from the
# stride-4 level (finest_scale 56), 1000 proposals before NMS and 300 after, 128 sampled RoIs.
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py']

model = dict(
    type='OpenVocabFasterRCNN',
    class_names=None,  # the running dataset's classes; tools/test.py --texts, texts=[...]
    text=dict(templates=('{}', )),  # the tiny CLIP was trained on bare names
    data_preprocessor=dict(mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323]),
    backbone=dict(
        _delete_=True,
        type='CLIPPyramidBackbone',
        clip=dict(model_name='clip-synthetic-tiny', pretrained=None),  # packaged weights
        vit=dict(norm='BN', drop_path_rate=0.0)),
    neck=dict(in_channels=None, out_channels=64),  # in: [128] * 4, filled in
    rpn_head=dict(in_channels=64, feat_channels=64, anchor_generator=dict(scales=[2])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64, finest_scale=56),
        bbox_head=dict(type='TextEmbeddingBBoxHead', in_channels=64, fc_out_channels=256,
                       temperature=50.0, reg_class_agnostic=True)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300),
                   rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(max_per_img=300)))
