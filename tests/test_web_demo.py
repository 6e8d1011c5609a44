"""The web demo (``demo/web_demo.py``) in a real browser, and the page's logic without one.

The browser test starts the server on a free port of 127.0.0.1, drives Debian's headless
Chromium through Selenium (the driver path given explicitly: Selenium Manager downloads nothing),
uploads a synthetic scene, runs segment, detect and ground on the embedded tiny CLIP, and checks
what the page shows; its screenshots land in ``outputs/web_demo_screenshots/``. Gradio, Selenium
and Chromium are the full install's (``tools/install.sh``): missing, these tests fail.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gradio  # noqa: F401 - the `web` extra: without it this module fails, it does not skip
import mmengine  # noqa: F401 - the page's detector is an mmdet config: the full install only
import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from densevl.apis.web_session import DEFAULT_DETECTOR, DemoInputError, WebSession, read_image
from densevl.datasets.synthetic import referring_expressions
from densevl.demo_support import render_scene, split_texts

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / 'outputs' / 'web_demo_screenshots'
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
SERVER_START_S = 180      # the 2-core CI machine imports torch, mmengine and Gradio first
FIRST_RESULT_S = 120
RESULT_S = 60
SCENE_SEED = 17    # a grass scene of red and orange things the tiny CLIP segments well


# -- the page's logic, without a browser ----------------------------------------------------------

@pytest.fixture(scope='module')
def session():
    return WebSession()


@pytest.fixture(scope='module')
def scene_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('web') / 'scene.png'
    Image.fromarray(render_scene(SCENE_SEED).image).save(path)
    return path


def test_split_texts():
    assert split_texts('cat; kitten, dog,,grass') == ['cat;kitten', 'dog', 'grass']
    assert split_texts(' , ;') == []


def test_segment_legend_heat_maps_and_model_defaults(session, scene_file):
    controls = session.seg_controls('clip-synthetic-tiny')
    protocol = session.seg_inferencer('clip-synthetic-tiny').protocol
    assert (controls.kind, controls.mode, controls.bg_threshold) == \
        ('clip', protocol.mode, protocol.prob_threshold)
    out = session.segment(scene_file, 'red, blue, sand;beach', 'clip-synthetic-tiny')
    assert [e.name for e in out.legend] == ['red', 'blue', 'sand', '(background)']
    assert len(out.gallery) == 3 and out.image.shape[0] == 256
    assert any('tiny CLIP' in n for n in out.notes)
    # the same (model, weights) key: the model is loaded once
    assert session.seg_inferencer('clip-synthetic-tiny') is session.seg_inferencer(
        'clip-synthetic-tiny', '  ')


def test_changed_settings_rebuild_and_say_so(session, scene_file):
    out = session.segment(scene_file, 'red, sand', 'clip-synthetic-tiny', mode='naclip',
                          slide=(32, 16))
    assert "`mode=naclip`" in out.notes[-1]


def test_ovseg_settings_apply_per_call_without_a_rebuild(scene_file):
    session = WebSession()
    config = str(ROOT / 'configs/ovseg/ovseg_clip-synthetic-tiny_400it_synthetic-64.py')
    own = session.seg_controls(config)
    inferencer = session.seg_inferencer(config)
    segmenter = inferencer.segmenter
    seen = []
    infer = segmenter.semantic_maps

    def spy(*args, **kwargs):
        seen.append((segmenter.ensemble_weight, segmenter.mask_threshold))
        return infer(*args, **kwargs)
    segmenter.semantic_maps = spy
    out = session.segment(scene_file, 'red, sand', config, ensemble_weight=0.3,
                          mask_threshold=0.4)
    assert any('`ensemble_weight=0.3`, `mask_threshold=0.4`' in n for n in out.notes)
    assert seen == [(0.3, 0.4)]
    assert session.seg_inferencer(config) is inferencer      # the model was not rebuilt
    assert (segmenter.ensemble_weight, segmenter.mask_threshold) == \
        (own.ensemble_weight, own.mask_threshold)          # and keeps its own settings
    with pytest.raises(ValueError, match="ensemble_weight is CLIP's share"):
        session.segment(scene_file, 'red', config, ensemble_weight=1.5)
    assert segmenter.ensemble_weight == own.ensemble_weight


def test_bad_input_gets_the_library_messages(session, scene_file, tmp_path):
    with pytest.raises(ValueError, match='vocabulary is empty'):
        session.segment(scene_file, ' , ', 'clip-synthetic-tiny')
    bad = tmp_path / 'photo.png'
    bad.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='not an image file PIL can read'):
        session.segment(bad, 'red', 'clip-synthetic-tiny')
    with pytest.raises(DemoInputError, match='no image'):
        session.segment(None, 'red', 'clip-synthetic-tiny')
    with pytest.raises(ValueError, match='referring expression is empty'):
        session.ground(scene_file, ' ', 'clip-synthetic-tiny', None, DEFAULT_DETECTOR)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        session.seg_controls('configs/nothing_here.py')


def test_reco_without_its_index_says_how_to_build_it(session, tmp_path):
    config = tmp_path / 'reco_no_index.py'
    config.write_text(f"_base_ = ['{ROOT}/configs/reco/reco_clip-synthetic-tiny_training-free_"
                      f"synthetic-64.py']\nmodel = dict(index='{tmp_path}/not_built')\n")
    with pytest.raises(FileNotFoundError, match='build one with tools/build_retrieval_index.py'):
        session.seg_controls(str(config))


def test_huge_image_is_downscaled_with_a_note(tmp_path):
    path = tmp_path / 'big.png'
    Image.fromarray(np.zeros((300, 3000, 3), np.uint8)).save(path)
    image, notes = read_image(path, max_side=1000)
    assert image.shape == (100, 1000, 3)
    assert 'downscaled' in notes[0] and '3000×300' in notes[0]


def test_random_detector_is_labelled(session, scene_file):
    out = session.detect(scene_file, 'red, blue', DEFAULT_DETECTOR)
    assert 'RANDOM WEIGHTS' in out.notes[0] and 'tools/train.py' in out.notes[0]
    assert [e.name for e in out.legend] == ['red', 'blue']


def test_grounding_category_source_switches_without_a_rebuild(session, scene_file):
    spy = []
    session.ground(scene_file, 'the orange object', 'clip-synthetic-tiny', None,
                   DEFAULT_DETECTOR, category_from='subject')
    inferencer = session.grounding_inferencer('clip-synthetic-tiny', None, DEFAULT_DETECTOR, None)
    mapper = inferencer.categories_of

    def categories_of(parsed, *args, **kwargs):
        spy.append(inferencer.category_from)
        return mapper(parsed, *args, **kwargs)
    inferencer.categories_of = categories_of
    out = session.ground(scene_file, 'the orange object', 'clip-synthetic-tiny', None,
                         DEFAULT_DETECTOR, category_from='phrase')
    assert spy and set(spy) == {'phrase'}
    assert session.grounding_inferencer('clip-synthetic-tiny', None, DEFAULT_DETECTOR,
                                        None) is inferencer
    assert 'category' in out.table
    with pytest.raises(ValueError, match="category_from must be 'subject' or 'phrase'"):
        session.ground(scene_file, 'the orange object', 'clip-synthetic-tiny', None,
                       DEFAULT_DETECTOR, category_from='noun')


# -- the page in Chromium -------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """``demo/web_demo.py`` on a free port of 127.0.0.1; stopped at the end."""
    port = _free_port()
    log = tmp_path_factory.mktemp('web_server') / 'server.log'
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'),
               GRADIO_ANALYTICS_ENABLED='False')
    with open(log, 'w') as out:
        proc = subprocess.Popen([sys.executable, 'demo/web_demo.py', '--port', str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f'the web demo exited ({proc.returncode}):\n{log.read_text()[-3000:]}')
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f'the web demo did not answer in {SERVER_START_S} s:\n'
                            f'{log.read_text()[-3000:]}')
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope='module')
def browser():
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), \
        'the web demo test needs Debian\'s chromium and chromium-driver (tools/install.sh)'
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                '--window-size=1400,1900', '--hide-scrollbars'):
        options.add_argument(arg)
    os.environ['SE_OFFLINE'] = 'true'    # Selenium Manager: never download a browser or driver
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, condition, timeout: float, what: str):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)
    except TimeoutException:
        SHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SHOTS / 'timeout.png'))
        body = driver.find_element(By.TAG_NAME, 'body').text[-2000:]
        pytest.fail(f'timed out after {timeout} s waiting for {what}; the page says:\n{body}')


def _result_src(driver) -> str | None:
    images = driver.find_elements(By.CSS_SELECTOR, '#result img')
    return images[0].get_attribute('src') if images else None


def _text(driver, selector: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ''


def _type_words(driver, words: str) -> None:
    box = driver.find_element(By.CSS_SELECTOR, '#words textarea, #words input')
    box.clear()
    box.send_keys(words)


def _choose_task(driver, task: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#task input[value="{task}"]').click()


def _run(driver, what: str, timeout: float, legend_words: list[str]) -> float:
    """Press Run; wait for a new result image and a legend holding ``legend_words``."""
    before = _result_src(driver)
    start = time.monotonic()
    driver.find_element(By.CSS_SELECTOR, '#run').click()
    _wait(driver, lambda d: _result_src(d) not in (None, before)
          and all(w in _text(d, '#legend') for w in legend_words), timeout, what)
    return time.monotonic() - start


def _open_page(driver, url: str) -> None:
    driver.get(url)
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '#run')
          and 'clip-synthetic-tiny' in _text(d, '#about-model'), FIRST_RESULT_S,
          'the page and its model')


def _open_and_upload(browser, server, scene_file) -> None:
    """Open the page, upload the scene and type the words of the segmentation runs."""
    _open_page(browser, server)
    browser.find_element(By.CSS_SELECTOR, '#image-in input[type=file]').send_keys(str(scene_file))
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#image-in img'), RESULT_S,
          'the uploaded image')
    _type_words(browser, 'red, orange, grass')


def test_page_in_chromium(server, browser, scene_file):
    """Upload, type, run each task; the page shows the result, its legend, its error box."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    timings = {}
    start = time.monotonic()
    _open_and_upload(browser, server, scene_file)
    _choose_task(browser, 'segment')
    _run(browser, 'the segmentation', FIRST_RESULT_S, ['red', 'orange', 'grass'])
    timings['cold_page_load_to_first_result_s'] = time.monotonic() - start
    assert 'tiny CLIP' in _text(browser, '#about-model')   # what the output means
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, '#heatmaps img')) >= 3,
          RESULT_S, 'three heat maps')
    browser.save_screenshot(str(SHOTS / 'web_demo_segment.png'))

    # an empty vocabulary: the library's message in a message box, and the server serves on
    _type_words(browser, ' , ')
    browser.find_element(By.CSS_SELECTOR, '#run').click()
    _wait(browser, lambda d: 'vocabulary is empty' in d.find_element(By.TAG_NAME, 'body').text,
          RESULT_S, 'the empty-vocabulary message')
    browser.save_screenshot(str(SHOTS / 'web_demo_error.png'))
    assert 'Traceback' not in browser.find_element(By.TAG_NAME, 'body').text

    _type_words(browser, 'red, orange')
    _choose_task(browser, 'detect')
    _run(browser, 'the detections', RESULT_S, ['red', 'orange', 'box'])
    assert 'RANDOM WEIGHTS' in _text(browser, '#notes')
    assert 'score' in _text(browser, '#table')
    browser.save_screenshot(str(SHOTS / 'web_demo_detect.png'))

    scene = render_scene(SCENE_SEED)
    expression = referring_expressions(scene, np.random.default_rng(0), per_object=1)[0][0]
    _type_words(browser, expression)
    _choose_task(browser, 'ground')
    _run(browser, 'the grounding', RESULT_S, ['chosen box', 'candidate'])
    assert 'fused score' in _text(browser, '#table')
    browser.save_screenshot(str(SHOTS / 'web_demo_ground.png'))

    # warm: the page loaded again, its model already cached by the server
    start = time.monotonic()
    _open_and_upload(browser, server, scene_file)
    _run(browser, 'the warm segmentation', RESULT_S, ['red', 'orange', 'grass'])
    timings['warm_page_load_to_first_result_s'] = time.monotonic() - start
    (SHOTS / 'timings.json').write_text(json.dumps(timings, indent=1))

    # an unreadable upload: the library's message, not Gradio's or a traceback
    bad = scene_file.with_name('broken.png')
    bad.write_bytes(b'this is not a PNG')
    browser.find_element(By.CSS_SELECTOR, '#image-in input[type=file]').send_keys(str(bad))
    time.sleep(1)
    browser.find_element(By.CSS_SELECTOR, '#run').click()
    _wait(browser, lambda d: 'not an image file PIL can read' in d.find_element(
        By.TAG_NAME, 'body').text, RESULT_S, 'the unreadable-file message')
    browser.save_screenshot(str(SHOTS / 'web_demo_unreadable.png'))
    assert "'broken.png'" in browser.find_element(By.TAG_NAME, 'body').text
    print('RESULT ' + ' '.join(f'{k}={v:.2f}' for k, v in timings.items()))
