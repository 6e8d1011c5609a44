"""The torch-only selection (conftest.TORCH_ONLY_MODULES, run on a bare GPU machine by
tools/gpu_check.sh) runs without OpenMMLab, and leaves out no module that could join it."""
import os
import subprocess
import sys
from pathlib import Path

from conftest import TORCH_ONLY_MODULES

TESTS = Path(__file__).resolve().parent
BLOCKER = TESTS / 'no_openmmlab'
# Importable without OpenMMLab but left out, each with why (mark its OpenMMLab tests
# `openmmlab` and list it in TORCH_ONLY_MODULES instead, where that is all it takes).
LEFT_OUT = {
    'test_grounding_inferencer': 'some of its tests build mmdet detectors (grounding helper)',
    'test_grounding_albef': 'ALBEF needs timm and tokenizers of the full install',
    'test_grounding_open_vocab_detectors': 'GLIP / Grounding DINO are mmdet models (and BERT)',
    'test_torch_only_selection': 'this test: it runs the selection itself',
}


def _without_openmmlab(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(BLOCKER), *filter(None, [os.environ.get('PYTHONPATH')])]))
    env.setdefault('OMP_NUM_THREADS', '1')
    return subprocess.run([sys.executable, *args], cwd=TESTS.parent, env=env,
                          capture_output=True, text=True, timeout=900)


def test_every_module_importable_without_openmmlab_is_selected():
    names = sorted(p.stem for p in TESTS.glob('test_*.py'))
    # One forked child per module: a failed import must not leave half-imported packages behind
    # for the next module (torch and open_clip are imported once, before forking).
    probe = ('import importlib, os, sys, torch, open_clip\nfor name in sys.argv[1:]:\n'
             '    pid = os.fork()\n    if pid == 0:\n        try:\n'
             '            importlib.import_module(name)\n'
             '            print("OK", name, flush=True)\n'
             '        except ImportError:\n            print("NO", name, flush=True)\n'
             '        os._exit(0)\n    os.waitpid(pid, 0)\n')
    done = _without_openmmlab('-c', f'import sys; sys.path.insert(0, {str(TESTS)!r})\n' + probe,
                              *names)
    assert done.returncode == 0, done.stderr[-3000:]
    importable = {line.split()[1] for line in done.stdout.splitlines() if line.startswith('OK ')}
    assert set(LEFT_OUT) <= set(names), 'stale LEFT_OUT entries'
    assert TORCH_ONLY_MODULES <= set(names), 'stale TORCH_ONLY_MODULES entries'
    assert TORCH_ONLY_MODULES <= importable, TORCH_ONLY_MODULES - importable
    assert importable - TORCH_ONLY_MODULES - set(LEFT_OUT) == set(), 'add them to the selection'


def test_the_selection_passes_without_openmmlab():
    done = _without_openmmlab('-m', 'pytest', '-q', '-m', 'torch_only', '-p', 'no:cacheprovider',
                              *sorted(f'tests/{name}.py' for name in TORCH_ONLY_MODULES))
    assert done.returncode == 0, done.stdout[-6000:]
