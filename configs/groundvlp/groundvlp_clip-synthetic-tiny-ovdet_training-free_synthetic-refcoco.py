# GroundVLP (zero-shot grounding, training-free) on the proving ground's RefCOCO-format test
# split (data/synthetic/refcoco, written by tools/make_synthetic_dataset.py): heat maps of
# clip-synthetic-tiny (packaged weights), the open-vocabulary Faster R-CNN of configs/ovdet in
# the detector slot (its seed-0 checkpoint; another with --cfg-options
# model.detector.weights=PATH). The categories of this world are colours, so the subject's noun
# phrase is mapped to a category (category_from='phrase'), as tools/benchmark_grounding.py's
# groundvlp_acc row does. Acc@0.5 per sentence.
_base_ = ['../_base_/default_runtime_det.py', '../_base_/datasets/refcoco_grounding.py']

model = dict(
    type='GroundVLP',
    clip='clip-synthetic-tiny',
    clip_weights=None,  # the zoo's packaged weights
    detector=dict(
        config='{{fileDirname}}/../ovdet/'
        'ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128.py',
        weights='work_dirs/seed0/ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128/'
        'iter_800.pth'),
    category_mode='predicted',  # 'gt': the dataset's category, not strictly zero-shot
    category_from='phrase',
    predicted_score_thr=0.3,
    gt_score_thr=0.15)

test_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root='data/synthetic/refcoco/', split_file='refs(synthetic).p',
                 split='test', data_prefix=dict(img_path='../images')))
