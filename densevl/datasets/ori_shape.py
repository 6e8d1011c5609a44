"""Scoring at the size a pipeline resized and cropped to, not the size of the file."""
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SetOriShapeToImgShape(BaseTransform):
    """Make the current image the original: ``ori_shape = img_shape``.

    mmseg's segmentors return their predictions at ``ori_shape``, the size of the image file,
    because the labels are normally scored at that size. The benchmarks that score at a resized
    and cropped size (COCO-Stuff-27 and Cityscapes-27: short side 320, centre crop 320 x 320,
    label maps transformed with the image) put this after the crop, so that predictions come back
    at the size of the transformed labels.
    """

    def transform(self, results: dict) -> dict:
        results['ori_shape'] = tuple(results['img'].shape[:2])
        results['img_shape'] = results['ori_shape']
        return results
