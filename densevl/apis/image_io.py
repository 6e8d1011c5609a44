"""Reading images the way a user hands them in: paths, arrays, PIL images."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

ImageInput = str | os.PathLike | np.ndarray | Image.Image


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array.astype(np.float32) / 257.0).round().astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        finite = array[np.isfinite(array)]
        if finite.size and (finite.min() < 0 or finite.max() > 1.0 + 1e-6):
            raise ValueError('a float image must hold values in [0, 1]; scale it or pass '
                             'uint8')
        return (np.nan_to_num(array).clip(0, 1) * 255).round().astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return array.clip(0, 255).astype(np.uint8)
    raise ValueError(f'unsupported image dtype {array.dtype}; pass uint8, uint16 or float '
                     'in [0, 1]')


def to_rgb_array(image: np.ndarray) -> np.ndarray:
    """Any HxW, HxWx1, HxWx3 or HxWx4 array (uint8, uint16 or float in [0, 1]) as HxWx3 uint8 RGB.

    Grayscale is repeated over three channels; RGBA is composited over white (what a viewer
    shows); 16-bit is scaled down.
    """
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f'expected an image of shape HxW, HxWx3 or HxWx4, got {image.shape}')
    if image.shape[2] == 4:
        rgb = image[..., :3].astype(np.float32)
        scale = 65535.0 if image.dtype == np.uint16 else (1.0 if image.dtype.kind == 'f' else 255.0)
        alpha = image[..., 3:].astype(np.float32) / scale
        image = (rgb * alpha + scale * (1 - alpha)).astype(image.dtype)
    image = _to_uint8(image)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def _pil_to_array(image: Image.Image) -> np.ndarray:
    if image.mode.startswith('I;16'):
        return to_rgb_array(np.asarray(image).astype(np.uint16))
    if image.mode == 'I':  # 32-bit integers: 16-bit data as PNG decodes it, or promoted 8-bit
        array = np.asarray(image)
        return to_rgb_array(array.astype(np.uint16 if array.max() > 255 else np.uint8))
    if image.mode == 'RGBA' or image.mode == 'LA' or 'transparency' in image.info:
        image = image.convert('RGBA')
    elif image.mode != 'RGB':
        image = image.convert('RGB')
    return to_rgb_array(np.asarray(image))


def load_image(image: ImageInput) -> np.ndarray:
    """Read a path, an ndarray (RGB order) or a PIL image as an HxWx3 uint8 RGB array.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file is not a readable image, or it is truncated.
    """
    if isinstance(image, Image.Image):
        return _pil_to_array(image)
    if isinstance(image, np.ndarray):
        return to_rgb_array(image)
    if not isinstance(image, (str, os.PathLike)):
        raise TypeError(f'cannot read an image from {type(image).__name__}; pass a path, an '
                        'HxWx3 RGB ndarray or a PIL image')
    path = Path(image)
    if not path.is_file():
        raise FileNotFoundError(f'image {str(path)!r} does not exist')
    try:
        with Image.open(path) as pil:
            pil.load()
            return _pil_to_array(pil)
    except UnidentifiedImageError as err:
        raise ValueError(f'{str(path)!r} is not an image file PIL can read (JPEG, PNG, ...); '
                         'check the path or convert the file') from err
    except OSError as err:
        raise ValueError(f'{str(path)!r} could not be decoded ({err}); the file is probably '
                         'truncated or corrupt: copy or download it again') from err


def save_drawing(drawing: np.ndarray, source: ImageInput, index: int, out_dir: str | os.PathLike,
                 suffix: str) -> Path:
    """Write an inferencer's drawing as ``OUT_DIR/<stem>_<suffix>.png``; the stem is the input
    file's, or ``image_<index>`` for an array or PIL image."""
    stem = Path(source).stem if isinstance(source, (str, os.PathLike)) else f'image_{index}'
    path = Path(out_dir) / f'{stem}_{suffix}.png'
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(drawing).save(path)
    return path
