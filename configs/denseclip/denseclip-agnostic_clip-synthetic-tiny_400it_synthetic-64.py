# Proving ground: vocabulary-agnostic DenseCLIP, trained on the names of the 12 seen classes only
# (pink and purple are neither in the train split nor in its vocabulary) and tested on the novel
# split, whose every scene holds a pink or purple thing, with all 14 names. The FPN gets the
# score-weighted text embedding (C channels, whatever the vocabulary) and the head classifies
# pixels by cosine with the context-refined text embeddings (TextCosineFPNHead).
_base_ = [
    './_base_/denseclip_fpn_clip-synthetic-tiny.py', '../_base_/datasets/synthetic_train.py',
    '../_base_/schedules/schedule_400it.py'
]
seen_classes = ('grass', 'sky', 'water', 'sand', 'brick', 'wood', 'red', 'orange', 'yellow',
                'green', 'blue', 'white')
model = dict(
    vocabulary_agnostic=True,
    class_names='SyntheticSceneDataset',  # inference: all 14 classes
    train_class_names=seen_classes,
    decode_head=dict(type='TextCosineFPNHead', num_classes=len(seen_classes)))
# labels of the seen classes renumbered to the seen vocabulary (unseen ones would become 255)
train_dataloader = dict(dataset=dict(metainfo=dict(classes=seen_classes)))
val_dataloader = dict(
    dataset=dict(data_prefix=dict(img_path='images/novel', seg_map_path='annotations/novel')))
test_dataloader = val_dataloader
