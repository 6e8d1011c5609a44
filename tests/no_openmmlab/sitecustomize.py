"""On ``PYTHONPATH``, makes mmcv, mmengine, mmseg and mmdet unimportable: a CPU machine with the
full stack then behaves like a bare GPU machine (tools/gpu_check.sh --simulate-bare,
tests/test_torch_only_selection.py)."""
import importlib.abc
import sys

BLOCKED = ('mmcv', 'mmengine', 'mmseg', 'mmdet')


class _BlockOpenMMLab(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in BLOCKED:
            raise ImportError(f'{name} is blocked (tests/no_openmmlab: a machine without it)')
        return None


sys.meta_path.insert(0, _BlockOpenMMLab())
