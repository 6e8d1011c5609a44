# synthetic_train.py with the vocabulary of its labels, the 12 seen classes (pink and purple never
# appear in the train split): the labels are renumbered to the seen vocabulary (unseen ones would
# become 255). A vocabulary-agnostic model config trains on these names
# (model.train_class_names=_base_.seen_classes) and is tested with all 14.
_base_ = ['./synthetic_train.py']

seen_classes = ('grass', 'sky', 'water', 'sand', 'brick', 'wood', 'red', 'orange', 'yellow',
                'green', 'blue', 'white')
train_dataloader = dict(dataset=dict(metainfo=dict(classes=seen_classes)))
