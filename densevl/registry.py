"""Where densevl's OpenMMLab adapters register.

Segmentation modules join mmsegmentation's registries and detection modules mmdetection's, so a
densevl config keeps the ``default_scope`` its users know (``'mmseg'`` / ``'mmdet'``) and every
mmseg/mmdet component resolves without a scope prefix. Configs load densevl with
``custom_imports=dict(imports=['densevl.models.mm_adapters',
'densevl.datasets.mm_datasets'])``. A module used by both
(a backbone, say) registers in both.
"""
from importlib.util import find_spec

from mmseg.registry import DATASETS as SEG_DATASETS
from mmseg.registry import METRICS as SEG_METRICS
from mmseg.registry import MODELS as SEG_MODELS
from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS

__all__ = ['SEG_DATASETS', 'SEG_METRICS', 'SEG_MODELS', 'SEG_TRANSFORMS']

if find_spec('mmdet') is not None:
    from mmdet.registry import DATASETS as DET_DATASETS
    from mmdet.registry import METRICS as DET_METRICS
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.registry import TRANSFORMS as DET_TRANSFORMS

    __all__ += ['DET_DATASETS', 'DET_METRICS', 'DET_MODELS', 'DET_TRANSFORMS']
