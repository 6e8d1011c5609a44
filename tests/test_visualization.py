import numpy as np
import pytest

from densevl.visualization import (
    draw_score_map,
    draw_sem_seg,
    legend_entries,
    make_palette,
    turbo_lut,
)


def _image(h: int = 64, w: int = 80) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _labels(h: int = 64, w: int = 80) -> np.ndarray:
    labels = np.full((h, w), -1, dtype=np.int64)
    labels[:, : w // 2] = 0
    labels[h // 2:, w // 2:] = 2
    return labels


def test_palette_is_deterministic():
    assert np.array_equal(make_palette(20), make_palette(20))
    assert np.array_equal(make_palette(20, seed=3), make_palette(20, seed=3))
    assert not np.array_equal(make_palette(20, seed=0), make_palette(20, seed=1))


@pytest.mark.parametrize('n', [1, 8, 16, 150])
def test_palette_colours_are_distinct(n):
    palette = make_palette(n)
    assert palette.shape == (n, 3) and palette.dtype == np.uint8
    dist = np.linalg.norm(palette[:, None].astype(float) - palette[None].astype(float), axis=2)
    np.fill_diagonal(dist, np.inf)
    assert dist.min() > 20


def test_palette_prefix_is_stable():
    assert np.array_equal(make_palette(150)[:20], make_palette(20))


def test_legend_entries_only_present():
    names = ['cat', 'dog', 'grass', 'sky']
    assert legend_entries(_labels(), names) == [(0, 'cat'), (2, 'grass')]
    assert legend_entries(_labels(), names, only_present=False) == list(enumerate(names))
    assert legend_entries(np.full((4, 4), -1), names) == []


def test_sem_seg_overlay_shape_and_blending():
    image, labels = _image(), _labels()
    names = ['cat', 'dog', 'grass']
    plain = draw_sem_seg(image, labels, names, legend=False)
    assert plain.shape == image.shape and plain.dtype == np.uint8
    unlabeled = labels < 0
    assert np.array_equal(plain[unlabeled], image[unlabeled])
    # Away from the class boundary a pixel is exactly the alpha blend of image and class colour.
    colour = make_palette(3)[0].astype(float)
    expected = np.round(0.5 * image[5, 5].astype(float) + 0.5 * colour)
    assert np.array_equal(plain[5, 5], expected.astype(np.uint8))

    with_legend = draw_sem_seg(image, labels, names)
    assert with_legend.shape[0] == image.shape[0] and with_legend.shape[1] > image.shape[1]
    assert np.array_equal(with_legend[:, : image.shape[1]], plain)


def test_sem_seg_alpha_zero_keeps_image_off_boundaries():
    image, labels = _image(), _labels()
    out = draw_sem_seg(image, labels, ['a', 'b', 'c'], alpha=0.0, legend=False)
    assert np.array_equal(out[5:-5, 5:30], image[5:-5, 5:30])


def test_sem_seg_long_vocabulary_wraps_into_columns():
    image = _image(64, 64)
    labels = np.arange(64 * 64).reshape(64, 64) % 40
    names = [f'class {i}' for i in range(40)]
    one = draw_sem_seg(image, labels % 2, names)
    many = draw_sem_seg(image, labels, names)
    assert many.shape[0] == 64 and many.shape[1] > one.shape[1]


def test_sem_seg_rejects_bad_labels():
    with pytest.raises(ValueError):
        draw_sem_seg(_image(), _labels(), ['only one name'])
    with pytest.raises(ValueError):
        draw_sem_seg(_image(), _labels(32, 32), ['a', 'b', 'c'])


@pytest.mark.parametrize('score_hw', [(64, 80), (7, 9)])
def test_score_map_shape_and_dtype(score_hw):
    image = _image()
    scores = np.random.default_rng(1).standard_normal(score_hw).astype(np.float32)
    bare = draw_score_map(image, scores, colorbar=False)
    assert bare.shape == image.shape and bare.dtype == np.uint8
    full = draw_score_map(image, scores, title='cat')
    assert full.dtype == np.uint8 and full.shape[2] == 3
    assert full.shape[0] > image.shape[0] and full.shape[1] > image.shape[1]


def test_turbo_lut_runs_dark_blue_to_dark_red():
    lut = turbo_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert lut[0, 2] > lut[0, 0] and lut[-1, 0] > lut[-1, 2]
