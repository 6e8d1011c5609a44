"""Write a tuned CLIP where OVSeg reads it, when its training ends."""
from __future__ import annotations

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ExportTunedCLIPHook(Hook):
    """After training, call the model's ``export(work_dir)`` (a
    :class:`~densevl.models.ovseg.region_text_tuning.RegionTextTuner`: ``clip.pth`` and, after
    mask prompt tuning, ``clip.mask_embedding.pth``) and log the files."""

    priority = 'LOWEST'

    @master_only
    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        for path in model.export(runner.work_dir):
            print_log(f'tuned CLIP written: {path}', logger='current')
