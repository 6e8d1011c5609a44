"""The training augmentations of ReCo+ that mmseg lacks (NoelShin/reco, ``datasets/base_dataset.py``
and ``datasets/augmentations``): padding with the image's own mean colour before a random crop,
torchvision's colour jitter applied with a probability, SimCLR's Gaussian blur."""
from __future__ import annotations

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PadToSizeWithMean(BaseTransform):
    """Pad the image at the bottom and right to at least ``size`` with its own mean colour and
    the label maps with ``seg_pad_val`` (ReCo's ``random_crop``, before mmseg's ``RandomCrop``).

    Args:
        size: ``(h, w)``, the crop that follows.
        seg_pad_val: the label of the padding (the ignore label).
    """

    def __init__(self, size: tuple[int, int], seg_pad_val: int = 255) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.seg_pad_val = seg_pad_val

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        pad_h, pad_w = max(self.size[0] - h, 0), max(self.size[1] - w, 0)
        if pad_h == 0 and pad_w == 0:
            return results
        fill = img.reshape(-1, img.shape[-1]).mean(axis=0).astype(img.dtype)
        padded = np.empty((h + pad_h, w + pad_w, img.shape[2]), img.dtype)
        padded[...] = fill
        padded[:h, :w] = img
        results['img'] = padded
        for key in results.get('seg_fields', []):
            results[key] = np.pad(results[key], ((0, pad_h), (0, pad_w)),
                                  constant_values=self.seg_pad_val)
        results['img_shape'] = padded.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size}, seg_pad_val={self.seg_pad_val})'


@TRANSFORMS.register_module()
class RandomColorJitter(BaseTransform):
    """torchvision's ``ColorJitter`` applied with probability ``prob`` (ReCo: 0.8, 0.8, 0.8, 0.2
    with p 0.8); the image is BGR uint8 as mmcv loads it.

    Args:
        brightness, contrast, saturation, hue: as :class:`torchvision.transforms.ColorJitter`.
        prob: the probability of applying it.
    """

    def __init__(self, brightness: float = 0.8, contrast: float = 0.8, saturation: float = 0.8,
                 hue: float = 0.2, prob: float = 0.8) -> None:
        from torchvision.transforms import ColorJitter

        self.jitter = ColorJitter(brightness=brightness, contrast=contrast,
                                  saturation=saturation, hue=hue)
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        from PIL import Image

        rgb = Image.fromarray(np.ascontiguousarray(results['img'][..., ::-1]))
        results['img'] = np.ascontiguousarray(np.asarray(self.jitter(rgb))[..., ::-1])
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.jitter}, prob={self.prob})'


@TRANSFORMS.register_module()
class RandomGaussianBlur(BaseTransform):
    """SimCLR's Gaussian blur (ReCo's ``GaussianBlur``): with probability ``prob``, a kernel of
    ``int(kernel_ratio · min(h, w) // 2 · 2) + 1`` pixels, σ uniform in ``sigma``.

    Args:
        prob: the probability of blurring.
        sigma: ``(min, max)`` of σ in pixels.
        kernel_ratio: the kernel's size as a fraction of the image's short side.
    """

    def __init__(self, prob: float = 0.5, sigma: tuple[float, float] = (0.1, 2.0),
                 kernel_ratio: float = 0.1) -> None:
        self.prob = prob
        self.sigma = (float(sigma[0]), float(sigma[1]))
        self.kernel_ratio = kernel_ratio

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img']
        kernel = int(self.kernel_ratio * min(img.shape[:2]) // 2 * 2) + 1
        sigma = np.random.uniform(*self.sigma)
        results['img'] = cv2.GaussianBlur(img, (kernel, kernel), sigma)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(prob={self.prob}, sigma={self.sigma}, '
                f'kernel_ratio={self.kernel_ratio})')
