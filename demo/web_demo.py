"""The web demo: segment, detect or ground any words in an image, in the browser (Gradio).

    make web                                   # http://127.0.0.1:7860
    .venv/bin/python demo/web_demo.py --port 7860 [--device cuda]

Upload an image or pick an example (two photographs, generated synthetic scenes), type the words
(``,`` between classes, ``;`` between synonyms; for ``ground`` one referring expression), choose
the task and the model, press Run. The embedded tiny CLIP (``clip-synthetic-tiny``) is the
default: it needs no weights and no network. The page is served on 127.0.0.1 only.

The page's logic is :class:`densevl.apis.web_session.WebSession`; this file is its layout.
"""
from __future__ import annotations

import argparse
import html
import logging
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, UnidentifiedImageError

from densevl.apis import load_image
from densevl.apis.web_session import (
    DEFAULT_DETECTOR,
    DEFAULT_MODEL,
    ROOT,
    PageResult,
    WebSession,
    detection_score_threshold,
    grounding_category_from,
)
from densevl.datasets.synthetic import referring_expressions
from densevl.demo_support import render_scene
from densevl.errors import WeightsUnavailableError
from densevl.models.clip import DENSE_MODES, MODEL_ZOO

logger = logging.getLogger('densevl.web_demo')

TASKS = ('segment', 'detect', 'ground')
#: The errors whose message is for the user (the library's own; TypeError and KeyError are what
#: mmengine raises for a bad config's arguments and types, and may also be bugs, so their
#: tracebacks are logged too); anything else is a bug, logged with its traceback on the server
#: while the page says one line.
USER_ERRORS = (ValueError, FileNotFoundError, WeightsUnavailableError, ImportError, TypeError,
               KeyError)
SCENE_SEEDS = {'segment': 17, 'detect': 3, 'ground': 11}
SEG_CONFIG_GLOBS = ('training_free/*clip-synthetic-tiny*.py',
                    'ovseg/ovseg_*clip-synthetic-tiny*.py', 'reco/reco_clip-synthetic-tiny*.py',
                    'denseclip/*clip-synthetic-tiny_400it*.py')
DET_CONFIG_GLOBS = ('ovdet/*synthetic*.py', 'denseclip/retinanet_*synthetic*.py',
                    'denseclip/mask-rcnn_*synthetic*.py')
CSS = """
#legend .dv-item {display: inline-flex; align-items: center; margin: 2px 14px 2px 0;}
#legend .dv-swatch {width: 14px; height: 14px; border: 1px solid #555; border-radius: 3px;
                    margin-right: 6px; display: inline-block;}
#legend .dv-detail {color: #777; margin-left: 5px; font-size: 90%;}
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--port', type=int, default=7860, help='port on 127.0.0.1')
    parser.add_argument('--device', default='cpu', help='torch device of the models')
    return parser.parse_args(argv)


def image_input(**kwargs) -> gr.Image:
    """``gr.Image(type='filepath')`` whose upload errors are the library's messages: Gradio opens
    the file before any handler runs, so an unreadable one is refused there with
    :func:`load_image`'s words instead of Gradio's. (Wrapped on the instance: a subclass of a
    Gradio component makes Gradio write a ``.pyi`` stub beside this file.)"""
    component = gr.Image(type='filepath', image_mode=None, **kwargs)
    preprocess = component.preprocess

    def preprocess_with_library_errors(payload):
        try:
            return preprocess(payload)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            name = getattr(payload, 'orig_name', None) or 'the file'
            message = f'{name}: {err}'
            if isinstance(err, (UnidentifiedImageError, OSError)):
                try:
                    load_image(payload.path)
                except (ValueError, FileNotFoundError) as library_err:
                    message = str(library_err).replace(repr(str(payload.path)), repr(name))
            raise gr.Error(message, title='unreadable image', duration=None,
                           print_exception=False) from None

    component.preprocess = preprocess_with_library_errors
    return component


@contextmanager
def page_errors():
    """A user's mistake becomes a message box with the library's text; a bug becomes one line
    (its traceback goes to the server log). Either way the server keeps serving."""
    try:
        yield
    except gr.Error:
        raise
    except USER_ERRORS as err:
        if isinstance(err, (TypeError, KeyError)):
            logger.warning('the web demo refused the input', exc_info=True)
        raise gr.Error(str(err).strip("'\""), title='cannot run this', duration=None,
                       print_exception=False) from None
    except Exception as err:   # noqa: BLE001 - one user's bug must not reach the others
        logger.exception('the web demo failed')
        raise gr.Error(f'unexpected {type(err).__name__}: {err} (the server log has the '
                       'traceback; the server keeps running)', title='internal error',
                       print_exception=False) from None


def legend_html(entries) -> str:
    rows = ''.join(
        f'<span class="dv-item"><span class="dv-swatch" style="background: rgb{e.colour}">'
        f'</span><span class="dv-name">{html.escape(e.name)}</span>'
        f'<span class="dv-detail">{html.escape(e.detail)}</span></span>' for e in entries)
    return f'<div class="dv-legend">{rows}</div>'


def example_rows(scene_dir: Path) -> list[list]:
    """``[image, words, task]`` rows: a generated scene per task, and the two photographs."""
    rows = []
    for task, seed in SCENE_SEEDS.items():
        scene = render_scene(seed)
        path = scene_dir / f'scene_{seed}.png'
        Image.fromarray(scene.image).save(path)
        colours = list(dict.fromkeys(o.colour for o in scene.objects))
        if task == 'segment':
            words = ', '.join(colours + list(scene.stuff))
        elif task == 'detect':
            words = ', '.join(colours)
        else:
            words = referring_expressions(scene, np.random.default_rng(seed), per_object=1)[0][0]
        rows.append([str(path), words, task])
    images = ROOT / 'demo' / 'images'
    rows.append([str(images / 'chelsea.jpg'), 'cat;kitten, wall, floor', 'segment'])
    rows.append([str(images / 'astronaut.jpg'), 'person;astronaut, flag, rocket', 'segment'])
    return rows


def model_choices() -> tuple[list[str], list[str]]:
    configs = ROOT / 'configs'

    def listed(globs):
        return [str(p.relative_to(ROOT)) for g in globs for p in sorted(configs.glob(g))]

    return list(MODEL_ZOO) + listed(SEG_CONFIG_GLOBS), listed(DET_CONFIG_GLOBS)


def build_page(session: WebSession, scene_dir: Path) -> gr.Blocks:
    seg_models, detectors = model_choices()
    with gr.Blocks(title='densevl web demo', analytics_enabled=False) as page:
        gr.Markdown('## densevl: segment, detect or ground any words\n'
                    'Upload an image or pick an example, type the words, choose the task and the '
                    'model, press **Run**. The default model is the embedded tiny CLIP: no '
                    'weights, no network.')
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input(label='image', sources=['upload', 'clipboard'],
                                    elem_id='image-in', height=300)
                task = gr.Radio(list(TASKS), value='segment', label='task', elem_id='task')
                words = gr.Textbox(label='words', elem_id='words', lines=1,
                                   placeholder='red, blue, sand;beach',
                                   info='segment / detect: "," between classes, ";" between '
                                        'synonyms (detect: empty = the detector\'s classes); '
                                        'ground: one referring expression')
                run = gr.Button('Run', variant='primary', elem_id='run')
                with gr.Accordion('model', open=False):
                    model = gr.Dropdown(seg_models, value=DEFAULT_MODEL, allow_custom_value=True,
                                        label='model (segment, ground)', elem_id='model',
                                        info='a densevl or open_clip CLIP name, or a densevl '
                                             'config (.py)')
                    weights = gr.Textbox(label='weights', elem_id='weights',
                                         info='CLIP name: a local weights file (or an open_clip '
                                              'tag such as "openai": downloads); config: its '
                                              'checkpoint. Empty: the packaged weights / none')
                    detector = gr.Dropdown(detectors, value=DEFAULT_DETECTOR,
                                           allow_custom_value=True, elem_id='detector',
                                           label='detector (detect, and the slot of ground)',
                                           info='a densevl detection config')
                    detector_weights = gr.Textbox(label='detector weights',
                                                  elem_id='detector-weights',
                                                  info='its checkpoint; empty: RANDOM heads')
                with gr.Accordion("settings (at the model's own values)", open=False):
                    mode = gr.Dropdown(list(DENSE_MODES), label='dense mode', elem_id='mode')
                    slide = gr.Checkbox(label='sliding windows', elem_id='slide')
                    with gr.Row():
                        crop = gr.Number(label='window', precision=0, minimum=8)
                        stride = gr.Number(label='stride', precision=0, minimum=1)
                    bg_threshold = gr.Slider(0.0, 1.0, step=0.01, label='background threshold',
                                             info='pixels whose best class probability is lower '
                                                  'are background')
                    ensemble = gr.Slider(0.0, 1.0, step=0.05, visible=False,
                                         label="OVSeg λ: CLIP's share of the ensemble")
                    mask_threshold = gr.Slider(0.0, 0.99, step=0.01, visible=False,
                                               label='OVSeg mask threshold')
                    score_threshold = gr.Slider(0.0, 1.0, step=0.01,
                                                value=detection_score_threshold(),
                                                label='detect: score threshold')
                    category_from = gr.Dropdown(['subject', 'phrase'],
                                                value=grounding_category_from(),
                                                label='ground: map to a detector category the',
                                                elem_id='category-from',
                                                info='subject: its head noun; phrase: with its '
                                                     'adjectives (colours)')
                about = gr.Markdown(elem_id='about-model')
                gr.Examples(example_rows(scene_dir), inputs=[image, words, task],
                            label='examples (generated scenes of the tiny CLIP\'s world, and '
                                  'two photographs)')
            with gr.Column(scale=1):
                result = gr.Image(label='result', show_label=False, elem_id='result',
                                  format='png', interactive=False,
                                  buttons=['download', 'fullscreen'])
                legend = gr.HTML(elem_id='legend')
                notes = gr.Markdown(elem_id='notes')
                heat_maps = gr.Gallery(label='heat maps', elem_id='heatmaps', columns=3,
                                       height=280, object_fit='contain', format='png')
                table = gr.Markdown(elem_id='table')
                retrieved = gr.Gallery(label="ReCo: the archive images each word's reference "
                                             'was co-segmented from', elem_id='retrieved',
                                       columns=8, height=300, visible=False)

        # Gradio hands each handler the page's progress bar through this default
        def load_model(model_name, weights_path, progress=gr.Progress()):  # noqa: B008
            with page_errors():
                c = session.seg_controls(model_name, weights_path,
                                         lambda f, d: progress(f, desc=d))
            clip = c.kind == 'clip'
            crop_value, stride_value = c.slide or (c.short_side or 224, (c.short_side or 224) // 2)
            about_text = (f'**{model_name}** ({c.kind}; short side {c.short_side or "as given"})'
                          + ''.join(f'\n\n{n}' for n in c.notes))
            return (gr.update(value=c.mode, interactive=clip),
                    gr.update(value=c.slide is not None, interactive=clip),
                    gr.update(value=crop_value, interactive=clip),
                    gr.update(value=stride_value, interactive=clip),
                    gr.update(value=c.bg_threshold),
                    gr.update(value=c.ensemble_weight, visible=c.kind == 'ovseg'),
                    gr.update(value=c.mask_threshold, visible=c.kind == 'ovseg'),
                    about_text)

        def run_task(task_name, image_path, words_text, model_name, weights_path, det_config,
                     det_weights, mode_value, slide_on, crop_value, stride_value, bg, lam, mask,
                     score, category, about_text, progress=gr.Progress()):  # noqa: B008
            def report(fraction, description):
                progress(fraction, desc=description)

            with page_errors():
                if task_name == 'segment':
                    slide_value = (int(crop_value), int(stride_value)) if slide_on else None
                    out: PageResult = session.segment(
                        image_path, words_text, model_name, weights_path, mode=mode_value,
                        slide=slide_value, bg_threshold=bg, ensemble_weight=lam,
                        mask_threshold=mask, progress=report)
                elif task_name == 'detect':
                    out = session.detect(image_path, words_text, det_config, det_weights,
                                         score_threshold=score, progress=report)
                elif task_name == 'ground':
                    out = session.ground(image_path, words_text, model_name, weights_path,
                                         det_config, det_weights, category_from=category,
                                         progress=report)
                else:
                    raise ValueError(f'unknown task {task_name!r}; choose one of {TASKS}')
            # what the model panel already says is not repeated under the result
            shown = [n for n in out.notes if n not in (about_text or '')]
            return (out.image, legend_html(out.legend), '\n\n'.join(shown), out.table,
                    gr.update(value=out.gallery, visible=bool(out.gallery)),
                    gr.update(value=out.retrieved, visible=bool(out.retrieved)))

        controls = [mode, slide, crop, stride, bg_threshold, ensemble, mask_threshold, about]
        page.load(load_model, [model, weights], controls)
        model.change(load_model, [model, weights], controls)
        weights.submit(load_model, [model, weights], controls)
        run.click(run_task, [task, image, words, model, weights, detector, detector_weights,
                             mode, slide, crop, stride, bg_threshold, ensemble, mask_threshold,
                             score_threshold, category_from, about],
                  [result, legend, notes, table, heat_maps, retrieved])
    return page


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[web_demo] %(message)s')
    scene_dir = Path(tempfile.mkdtemp(prefix='densevl-web-scenes-'))
    page = build_page(WebSession(device=args.device), scene_dir)
    page.queue(default_concurrency_limit=1)
    # 127.0.0.1 only: the page runs models on files it is handed, it is not for the network
    page.launch(server_name='127.0.0.1', server_port=args.port, share=False, show_error=True,
                allowed_paths=[str(scene_dir), str(ROOT / 'demo' / 'images')],
                max_file_size='50mb', theme=gr.themes.Default(), css=CSS, ssr_mode=False)
    return 0


if __name__ == '__main__':
    sys.exit(main())
