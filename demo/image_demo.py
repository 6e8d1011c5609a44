"""Open-vocabulary segmentation of one image: name the classes, get an overlay with a legend.

Example::

    python demo/image_demo.py demo/images/chelsea.jpg --texts "cat,wall,floor"
    python demo/image_demo.py demo/images/astronaut.jpg \\
        --texts "person;astronaut,spacesuit,flag,rocket" \\
        --model ViT-B-16 --weights /path/to/ViT-B-16.pt

Classes are separated by ``,``; synonyms of one class by ``;`` (the class scores the best of them).

A trained open-vocabulary config and its checkpoint, here OVSeg; any vocabulary::

    python demo/image_demo.py demo/images/chelsea.jpg --texts "cat,wall,floor" \\
        --model configs/ovseg/ovseg_clip-synthetic-tiny_400it_synthetic-64.py --weights CKPT

OVSeg runs with the reference demo's preset (CLIP alone, mask threshold 0.35; see
``--no-demo-preset``), and a single name is contrasted with ``'others'``, whose pixels are
background. ``--cfg-options`` changes the config (``model.classifier=mask_pooling``, SAM
proposals: ``model.proposals.type=SAM model.proposals.checkpoint=sam_vit_h_4b8939.pth``).

Detection (a detection config and its checkpoint; the classes default to the model's)::

    python demo/image_demo.py demo/images/astronaut.jpg --task det \
        --model configs/denseclip/retinanet_denseclip_r50_1x_coco.py --weights CHECKPOINT

Grounding (GroundVLP: a CLIP heat map x a detector; writes the image with the candidate boxes
and the chosen one beside the heat map; the detector threshold is halved until a box appears)::

    python demo/image_demo.py scene.png --task ground --query "the large red star" \\
        --model clip-synthetic-tiny --detector DET_CONFIG --detector-weights CHECKPOINT

with ``DET_CONFIG`` e.g.
``configs/ovdet/ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128.py``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from mmengine.config import DictAction
from PIL import Image

from densevl.datasets.synthetic import CLASSES
from densevl.demo_support import (
    class_palette,
    contrasts_with_others,
    format_detections,
    format_share_table,
    label_map,
    pixel_shares,
    render_scene,
    split_texts,
)
from densevl.errors import WeightsUnavailableError

DEFAULT_MODEL = 'clip-synthetic-tiny'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Segment an image into the classes named by --texts, or (--task det) '
                    'detect objects with a detection config.')
    parser.add_argument('image', nargs='?', help='image file (or use --scene)')
    parser.add_argument('--task', choices=['seg', 'det', 'ground'], default='seg',
                        help='seg: segment into --texts (default); det: detect objects with a '
                             'detection config (--model CONFIG --weights CHECKPOINT); ground: '
                             'find the object --query names (--detector CONFIG)')
    parser.add_argument('--query', default=None,
                        help='ground: the referring expression, e.g. "man in red shirt"')
    parser.add_argument('--detector', default=None,
                        help='ground: detection config of the detector slot')
    parser.add_argument('--detector-weights', default=None,
                        help='ground: its checkpoint (without it the detector is random)')
    parser.add_argument('--category', default=None,
                        help='ground: the ground-truth category (default: predicted by CLIP)')
    parser.add_argument('--scene', type=int, default=None, metavar='SEED',
                        help='segment a generated synthetic scene (test-split rules) instead of '
                             'an image file; it is saved beside the overlay')
    parser.add_argument('--texts', default=None,
                        help='classes separated by ",", synonyms of a class by ";" '
                             '(e.g. "cat;kitten,dog,grass"); with --scene the default is the '
                             "synthetic world's 14 classes")
    parser.add_argument('--model', default=DEFAULT_MODEL,
                        help=f'model zoo name or config file (default: {DEFAULT_MODEL})')
    parser.add_argument('--weights', default=None,
                        help='checkpoint path, or a pretrained tag such as "openai"')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    parser.add_argument('--out-file', default=None,
                        help='where to write the overlay (default: outputs/<image stem>_seg.png)')
    parser.add_argument('--bg-threshold', type=float, default=None,
                        help='pixels whose best class score is below this are background '
                             "(default: the model's protocol, 0 for CLIP names)")
    parser.add_argument('--mode', default=None,
                        choices=['naclip', 'sclip', 'clearclip', 'maskclip', 'plain'],
                        help="dense CLIP variant for a CLIP model name (default: the model's "
                             'own: naclip for real CLIP weights)')
    parser.add_argument('--score-threshold', type=float, default=0.3,
                        help='det: drop detections scoring lower (default: 0.3)')
    parser.add_argument('--templates', default=None,
                        help='prompt templates: imagenet80, vild14, single (default: the '
                             "model's own)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='seg with --model CONFIG: change config entries, e.g. '
                             'model.classifier=mask_pooling or model.ensemble_weight=0.7 '
                             '(applied after the demo preset)')
    parser.add_argument('--no-demo-preset', dest='demo_preset', action='store_false',
                        help="seg with --model CONFIG: run the config as it is, without its "
                             "model's demo preset. OVSeg's preset is the reference demo's: CLIP "
                             'alone (model.ensemble_weight=0.0) with model.mask_threshold=0.35; '
                             'a single --texts name is contrasted with "others" either way')
    return parser.parse_args(argv)


def random_weights_warning(model: str) -> str:
    bar = '!' * 78
    return (f'{bar}\n'
            f'!! WARNING: "{model}" has RANDOM weights: this segmentation is MEANINGLESS.\n'
            '!! Give real or trained weights, e.g.\n'
            '!!   --model ViT-B-16 --weights /path/to/ViT-B-16.pt\n'
            '!!   --model ViT-B-16 --weights openai      (downloads; needs network access)\n'
            f'{bar}')


def write_scene(seed: int, out_file: Path) -> Path:
    """Render synthetic scene ``seed`` (test-split rules) and save it beside ``out_file``."""
    scene = render_scene(seed)
    path = out_file.with_name(f'{out_file.stem}_input.png')
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene.image).save(path)
    print(f'scene {seed}: {scene.caption}')
    return path


def write_drawing(drawing: np.ndarray, out_file: Path) -> None:
    out_file.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(drawing).save(out_file)
    print(f'wrote {out_file}')


def detect(args: argparse.Namespace, image_path: Path) -> int:
    """``--task det``: boxes (and masks) from a detection config, drawn with names and scores."""
    if not args.model.endswith('.py'):
        print('error: --task det needs --model CONFIG (a detection config such as '
              'configs/denseclip/retinanet_denseclip_r50_1x_coco.py) and --weights CHECKPOINT',
              file=sys.stderr)
        return 2
    if args.cfg_options or not args.demo_preset:
        print('error: --cfg-options and --no-demo-preset are for --task seg with a config',
              file=sys.stderr)
        return 2
    texts = split_texts(args.texts) if args.texts else None
    out_file = Path(args.out_file or Path('outputs') / f'{image_path.stem}_det.png')

    from densevl.apis import OpenVocabDetInferencer

    inferencer = OpenVocabDetInferencer(args.model, weights=args.weights, device=args.device)
    result = inferencer(str(image_path), texts=texts, score_threshold=args.score_threshold)
    write_drawing(result['visualization'][0], out_file)
    print(format_detections(result['predictions'][0]))
    if inferencer.is_random_weights:
        print('!! WARNING: no --weights given: the detector is RANDOM and its boxes are '
              'MEANINGLESS.')
    return 0


def ground(args: argparse.Namespace, image_path: Path) -> int:
    """``--task ground``: GroundVLP's answer for ``--query``, as a figure. The detector's
    threshold starts at GroundVLP's (0.3, or 0.15 with ``--category``) and is halved (down to
    0.01) until the category has a box; then the class-agnostic proposals are used."""
    if not args.query or not args.query.strip():
        print('error: --task ground needs --query "a referring expression"', file=sys.stderr)
        return 2
    if not args.detector:
        print('error: --task ground needs --detector CONFIG (a detection config such as configs/'
              'ovdet/ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128.py)',
              file=sys.stderr)
        return 2
    from densevl.apis import GroundingInferencer
    from densevl.demo_support import ground_lowering_threshold
    from densevl.visualization import draw_grounding

    inferencer = GroundingInferencer(args.model, args.weights,
                                     detector=(args.detector, args.detector_weights),
                                     device=args.device)
    prediction, threshold = ground_lowering_threshold(inferencer, str(image_path), args.query,
                                                      args.category)
    out_file = Path(args.out_file or Path('outputs') / f'{image_path.stem}_ground.png')
    drawing = draw_grounding(load_image_array(image_path), prediction.heat_map.numpy(),
                             prediction.candidates.numpy(), prediction.candidate_scores.numpy(),
                             prediction.box.numpy(), title=args.query)
    write_drawing(drawing, out_file)
    x1, y1, x2, y2 = (round(v) for v in prediction.box.tolist())
    source = ('class-agnostic proposals (no box of the category)' if prediction.fallback
              else f'detector threshold {threshold:.3g}')
    print(f'subject {prediction.subject!r} -> category {prediction.category!r}; '
          f'{len(prediction.candidates)} candidates from {source}')
    print(f'chosen box [{x1}, {y1}, {x2}, {y2}], score {prediction.score:.4g}')
    if inferencer.is_random_weights:
        print('!! WARNING: random weights (CLIP or detector): the answer is MEANINGLESS.')
    return 0


def load_image_array(path: Path) -> np.ndarray:
    from densevl.apis import load_image
    return load_image(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if (args.image is None) == (args.scene is None):
        print('error: give an image file or --scene SEED (one of them)', file=sys.stderr)
        return 2
    if args.task in ('det', 'ground'):
        image_path = Path(args.image) if args.scene is None else \
            write_scene(args.scene, Path(args.out_file or f'outputs/scene_{args.task}.png'))
        if not image_path.is_file():
            print(f'error: no image at {image_path}', file=sys.stderr)
            return 2
        return detect(args, image_path) if args.task == 'det' else ground(args, image_path)
    if args.scene is not None:
        image_path = write_scene(args.scene, Path(args.out_file or 'outputs/scene_seg.png'))
        texts = args.texts or ','.join(CLASSES)
    else:
        image_path, texts = Path(args.image), args.texts
    if not texts:
        print('error: --texts is required with an image file', file=sys.stderr)
        return 2
    classes = split_texts(texts)
    if not classes:
        print('error: --texts names no class', file=sys.stderr)
        return 2
    if not image_path.is_file():
        print(f'error: no image at {image_path}', file=sys.stderr)
        return 2
    out_file = Path(args.out_file or Path('outputs') / f'{image_path.stem}_seg.png')

    from densevl.apis import OpenVocabSegInferencer

    # only what was asked for differs from the model's own inference protocol
    changes = {k: v for k, v in (('mode', args.mode), ('templates', args.templates))
               if v is not None}
    if args.cfg_options:
        changes['cfg_options'] = args.cfg_options
    inferencer = OpenVocabSegInferencer(args.model, weights=args.weights, device=args.device,
                                        demo_preset=args.demo_preset, **changes)
    if inferencer.preset:
        settings = ', '.join(f'model.{k}={v}' for k, v in inferencer.preset.items())
        print(f"demo preset of {type(inferencer.segmenter).__name__} (the reference demo's): "
              f'{settings}; --no-demo-preset or --cfg-options to change it')
    if len(classes) == 1 and contrasts_with_others(inferencer.segmenter):
        print(f"one class: {classes[0]!r} is contrasted with 'others', whose pixels are "
              'background')
    # the synthetic world's words are drawn in its own colours (grass green, sky blue, ...)
    result = inferencer(str(image_path), texts=classes, bg_threshold=args.bg_threshold,
                        palette=class_palette(classes))
    write_drawing(result['visualization'][0], out_file)
    print(format_share_table(pixel_shares(label_map(result['predictions'][0]), classes)))
    if getattr(inferencer, 'is_random_weights', False):
        print(random_weights_warning(args.model))
    return 0


def run(argv: list[str] | None = None) -> int:
    """:func:`main`, with a user's mistakes (missing weights or files, bad names) as one line."""
    try:
        return main(argv)
    except (WeightsUnavailableError, FileNotFoundError, ValueError, ImportError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(run())
