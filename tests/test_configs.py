"""Every config loads, targets the training-free segmentor and matches its dataset."""
import ast
import re
from pathlib import Path

import pytest
from mmengine import Config
from mmseg.registry import DATASETS

import densevl.datasets.mm_datasets  # noqa: F401  (registers densevl's dataset classes)

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / 'configs'
# The training-free configs; trained models have their own tests. The dataset bases they build
# on hold data only (no model, no runtime).
CONFIGS = sorted((CONFIG_DIR / 'training_free').glob('*.py'))
DATASET_BASES = sorted((CONFIG_DIR / '_base_' / 'datasets').glob('*.py'))
NAMES_FILES = sorted((CONFIG_DIR / '_base_' / 'names').glob('*.txt'))
TRAINING_FREE = sorted((CONFIG_DIR / 'training_free').glob('*.py'))
NAME_PATTERN = re.compile(
    r'(?P<method>maskclip|sclip|clearclip|naclip)_(?P<backbone>vit-b16|clip-synthetic-tiny)'
    r'_training-free_'
    r'(?P<dataset>[a-z0-9-]+)-(?P<short>\d+)\.py')


def _ids(paths):
    return [str(p.relative_to(CONFIG_DIR)) for p in paths]


def _load(path: Path) -> Config:
    # Custom imports are left out: building models is the smoke test's job, not this one's.
    return Config.fromfile(str(path), import_custom_modules=False)


def _bases(path: Path) -> list[Path]:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            value = ast.literal_eval(node.value)
            return [(path.parent / b).resolve() for b in ([value] if isinstance(value, str)
                                                          else value)]
    return []


def _depth(path: Path) -> int:
    return 1 + max((_depth(b) for b in _bases(path)), default=0)


def _class_names(path: Path) -> list[list[str]]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [[name.strip() for name in line.split(';')] for line in lines if line]


@pytest.mark.parametrize('path', NAMES_FILES, ids=[p.name for p in NAMES_FILES])
def test_names_are_unique(path):
    # A name under two classes ties them, and argmax then always picks the first.
    names = [n.lower() for names_of_class in _class_names(path) for n in names_of_class]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f'{path.name}: {duplicates}'


def test_every_method_has_a_config_per_benchmark():
    matches = [NAME_PATTERN.fullmatch(path.name) for path in TRAINING_FREE]
    assert all(matches), [p.name for p, m in zip(TRAINING_FREE, matches) if not m]
    backbones = [m['backbone'] for m in matches]
    assert backbones.count('vit-b16') == 32            # 4 methods x 8 benchmarks
    assert backbones.count('clip-synthetic-tiny') == 4  # 4 methods on the proving ground


@pytest.mark.parametrize('path', DATASET_BASES, ids=_ids(DATASET_BASES))
def test_dataset_bases_hold_data_only(path):
    cfg = _load(path)
    assert not {'model', 'default_scope', 'custom_imports'} & set(cfg), path.name


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_config_matches_its_dataset(path):
    cfg = _load(path)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports['imports'] == ['densevl.models.mm_adapters',
                                             'densevl.datasets.mm_datasets']
    assert cfg.model.type == 'TrainingFreeSegmentor'
    assert _depth(path) <= 3

    names_file = REPO / cfg.model.class_names
    assert names_file.is_file(), cfg.model.class_names
    dataset_cls = DATASETS.get(cfg.test_dataloader.dataset.type)
    assert dataset_cls is not None, cfg.test_dataloader.dataset.type
    classes = dataset_cls.METAINFO['classes']
    names = _class_names(names_file)
    assert len(names) == len(classes)
    assert all(all(names_of_class) for names_of_class in names), 'empty class name'

    # with-background sets threshold their max probability, the others must not
    has_background = classes[0] == 'background'
    assert (cfg.model.prob_threshold > 0) == has_background
    assert cfg.val_dataloader == cfg.test_dataloader


@pytest.mark.parametrize('path', TRAINING_FREE, ids=_ids(TRAINING_FREE))
def test_training_free_name_says_what_runs(path):
    match = NAME_PATTERN.fullmatch(path.name)
    cfg = _load(path)
    assert cfg.model.mode == match['method']
    resizes = [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Resize']
    if match['backbone'] == 'vit-b16':
        assert resizes[0]['scale'] == (2048, int(match['short']))
    else:  # the proving ground's scenes are used at their native size
        assert not resizes and match['short'] == '64'
    assert match['dataset'].replace('-', '_') in cfg.model.class_names
    if match['method'] == 'naclip':
        assert cfg.model.naclip_std == 5.0
