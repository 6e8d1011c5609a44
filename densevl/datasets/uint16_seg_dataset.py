"""Base of the benchmarks whose label maps are 16-bit (ADE-847, Pascal Context-459)."""
from typing import Any

from mmengine import fileio
from mmseg.datasets import BaseSegDataset

from .loading import UINT16_IGNORE_INDEX


class Uint16SegDataset(BaseSegDataset):
    """Semantic segmentation with ``uint16`` label maps (labels ``0..K-1``, 65535 ignored), as
    ov-seg's ``datasets/prepare_*.py`` write them for the benchmarks with more than 255 classes.

    Without ``ann_file`` the samples are the label maps in ``data_prefix['seg_map_path']``, each
    paired with the image of the same stem in ``data_prefix['img_path']`` (as detectron2's
    ``load_sem_seg`` pairs them): the image folder may hold more images than were annotated
    (Pascal Context's ``JPEGImages`` holds all of VOC2010). Read the maps with
    ``LoadUint16Annotations`` (mmseg's ``LoadAnnotations`` folds them to 8 bits) and evaluate
    with ``IoUMetric(ignore_index=65535)``.

    Args:
        img_suffix: suffix of the images.
        seg_map_suffix: suffix of the label maps.
        **kwargs: :class:`mmseg.datasets.BaseSegDataset`'s (``data_root``, ``data_prefix``,
            ``ann_file``, ``pipeline``, ...); ``reduce_zero_label`` must stay False.
    """

    def __init__(self, *, img_suffix: str = '.jpg', seg_map_suffix: str = '.tif',
                 ignore_index: int = UINT16_IGNORE_INDEX, **kwargs: Any) -> None:
        if kwargs.pop('reduce_zero_label', False):
            raise ValueError(f'{type(self).__name__} labels are 0..K-1 (65535 ignored); '
                             'reduce_zero_label must be False')
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         ignore_index=ignore_index, reduce_zero_label=False, **kwargs)

    def load_data_list(self) -> list[dict]:
        if self.ann_file:
            return super().load_data_list()
        img_dir, ann_dir = self.data_prefix['img_path'], self.data_prefix['seg_map_path']
        stems = sorted(name[:-len(self.seg_map_suffix)] for name in fileio.list_dir_or_file(
            ann_dir, list_dir=False, suffix=self.seg_map_suffix, recursive=True,
            backend_args=self.backend_args))
        if not stems:
            raise FileNotFoundError(f'no *{self.seg_map_suffix} label map in {ann_dir}; see '
                                    f'the docstring of {type(self).__name__} for the layout')
        data_list = []
        for stem in stems:
            img_path = fileio.join_path(img_dir, stem + self.img_suffix)
            if not fileio.exists(img_path, backend_args=self.backend_args):
                raise FileNotFoundError(f'label map {stem}{self.seg_map_suffix} has no image '
                                        f'{img_path}')
            data_list.append(dict(
                img_path=img_path, seg_map_path=fileio.join_path(ann_dir,
                                                                 stem + self.seg_map_suffix),
                label_map=self.label_map, reduce_zero_label=False, seg_fields=[]))
        return data_list
