"""Loading label maps mmseg's ``LoadAnnotations`` misreads: 16-bit ones (ADE-847, Pascal
Context-459) and KITTI-STEP's RGB panoptic maps."""
import mmcv
import numpy as np
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

#: The ignore label of 16-bit label maps (ov-seg's ADE-847 and PC-459 ``.tif`` files).
UINT16_IGNORE_INDEX = 65535


@TRANSFORMS.register_module()
class LoadUint16Annotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that keeps 16-bit label maps 16-bit.

    mmseg's transform casts every label map to ``uint8``, which folds the labels of a 16-bit map
    modulo 256 (class 846 of ADE-847 would become 78). This one keeps a ``uint16`` map as it is
    (labels ``0..K-1``, ignore :data:`UINT16_IGNORE_INDEX`: evaluate with
    ``IoUMetric(ignore_index=65535)``) and reads an 8-bit map exactly as mmseg does
    (``reduce_zero_label``, ``label_map``), so one test pipeline serves both kinds.

    Args:
        reduce_zero_label: as mmseg's (8-bit maps only; a 16-bit map with it raises).
        backend_args: file backend arguments.
        imdecode_backend: ``mmcv.imfrombytes``'s backend (``'pillow'``, ``'cv2'`` and
            ``'tifffile'`` all read 16-bit TIFF).
    """

    def _load_seg_map(self, results: dict) -> None:
        seg = mmcv.imfrombytes(fileio.get(results['seg_map_path'], backend_args=self.backend_args),
                               flag='unchanged', backend=self.imdecode_backend).squeeze()
        if seg.dtype != np.uint16:
            seg = seg.astype(np.uint8)   # mmseg's reading of 8-bit maps
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            dataset_value = results['reduce_zero_label']
            raise ValueError(f'LoadUint16Annotations(reduce_zero_label={self.reduce_zero_label}) '
                             f'but the dataset has reduce_zero_label={dataset_value}; leave it '
                             'unset in the pipeline')
        if self.reduce_zero_label:
            if seg.dtype == np.uint16:
                raise ValueError(f"{results['seg_map_path']} is a 16-bit label map; those hold "
                                 'labels 0..K-1 with ignore 65535, so reduce_zero_label must be '
                                 'False')
            ignored = (seg == 0) | (seg == 255)    # 0 -> ignore, k -> k - 1, as mmseg
            seg = np.where(ignored, 255, seg.astype(np.int16) - 1).astype(np.uint8)
        if results.get('label_map') is not None:
            original = seg.copy()
            for old_id, new_id in results['label_map'].items():
                seg[original == old_id] = new_id
        results['gt_seg_map'] = seg
        results['seg_fields'].append('gt_seg_map')


@TRANSFORMS.register_module()
class LoadKittiStepAnnotations(LoadAnnotations):
    """The semantic labels of KITTI-STEP's panoptic maps.

    KITTI-STEP stores a frame's labels as an RGB PNG: red is the semantic label (the 19
    Cityscapes trainIds, 255 void), green * 256 + blue the instance id. mmseg's
    ``LoadAnnotations`` would keep all three channels; this keeps red, as ``uint8`` with 255
    the ignore label.

    Args:
        imdecode_backend: ``mmcv.imfrombytes``'s backend.
        backend_args: file backend arguments.
    """

    def __init__(self, *, imdecode_backend: str = 'pillow',
                 backend_args: dict | None = None) -> None:
        super().__init__(imdecode_backend=imdecode_backend, backend_args=backend_args)

    def _load_seg_map(self, results: dict) -> None:
        if results.get('reduce_zero_label'):
            raise ValueError('KITTI-STEP labels are trainIds 0..18 (255 void); the dataset must '
                             'have reduce_zero_label=False')
        rgb = mmcv.imfrombytes(fileio.get(results['seg_map_path'], backend_args=self.backend_args),
                               flag='color', channel_order='rgb', backend=self.imdecode_backend)
        results['gt_seg_map'] = np.ascontiguousarray(rgb[..., 0])
        results['seg_fields'].append('gt_seg_map')
