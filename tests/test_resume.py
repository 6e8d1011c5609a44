"""Resuming an mmengine Runner under torch>=2.6's weights-only ``torch.load``."""
import copy
import importlib.util
import os
import pickle
import uuid
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from torch import nn
from torch.utils.data import Dataset

from densevl.engine import allow_mmengine_checkpoints


class ToyModel(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.fc(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=((out - torch.stack(labels)) ** 2).mean())
        return out


class ToyDataset(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(4, generator=g), labels=torch.randn(1, generator=g))


class RecordHook(Hook):
    """Records the state a resumed run starts from and the iterations it runs."""

    def __init__(self) -> None:
        self.start_iter = None
        self.start_optim_state = None
        self.ran_iters = []

    def before_train(self, runner) -> None:
        self.start_iter = runner.iter
        self.start_optim_state = copy.deepcopy(runner.optim_wrapper.state_dict())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.ran_iters.append(runner.iter + 1)  # the loop counts the iteration after its hooks


def _runner(work_dir, max_iters: int, resume: bool, hook: Hook | None = None) -> Runner:
    torch.manual_seed(0)  # the model is built before the Runner seeds anything
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'toy_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(dataset=ToyDataset(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[hook] if hook is not None else None,
        randomness=dict(seed=0),
        resume=resume,
    )


def _assert_same(a, b) -> None:
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


def test_resume_restores_iter_and_optimizer(tmp_path):
    _runner(tmp_path, max_iters=4, resume=False).train()
    assert (tmp_path / 'iter_4.pth').is_file()
    saved = CheckpointLoader.load_checkpoint(str(tmp_path / 'iter_4.pth'))  # weights-only load
    momentum = saved['optimizer']['state']
    assert momentum and all('momentum_buffer' in s for s in momentum.values())

    hook = RecordHook()
    resumed = _runner(tmp_path, max_iters=6, resume=True, hook=hook)
    resumed.train()
    assert hook.start_iter == 4
    _assert_same(hook.start_optim_state, saved['optimizer'])
    assert hook.ran_iters == [5, 6]
    assert resumed.iter == 6
    assert (tmp_path / 'iter_6.pth').is_file()

    # Resumed training equals an uninterrupted run (same seed, dataloader advanced on resume).
    straight = _runner(tmp_path / 'straight', max_iters=6, resume=False)
    straight.train()
    _assert_same(resumed.model.state_dict(), straight.model.state_dict())


def test_allow_is_idempotent():
    allow_mmengine_checkpoints()
    before = len(torch.serialization.get_safe_globals())
    allow_mmengine_checkpoints()
    assert len(torch.serialization.get_safe_globals()) == before


class _Arbitrary:
    """Stands for any user object that has no business in a weights file."""


class _CallsFunction:
    """Unpickles by calling an arbitrary callable (harmless here, ``os.getcwd``)."""

    def __reduce__(self):
        return os.getcwd, ()


class _ReachesThroughGetattr:
    """Unpickles as ``getattr(HistoryBuffer, '__init__')``: not a statistics method."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


@pytest.mark.parametrize('payload', [_Arbitrary(), _CallsFunction(), _ReachesThroughGetattr()],
                         ids=['custom-class', 'callable', 'getattr'])
def test_arbitrary_objects_still_refused(tmp_path, payload):
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=ToyModel().state_dict(), meta=dict(x=payload)), path)
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(path))
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(ToyModel(), str(path))


def _load_tool(name: str):
    path = Path(__file__).resolve().parents[1] / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'densevl_tools_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('flags, resume, load_from', [
    ([], False, None),
    (['--resume'], True, None),
    (['--resume', 'auto'], True, None),
    (['--resume', '{ckpt}'], True, '{ckpt}'),
])
def test_train_tool_resume_flags(tmp_path, flags, resume, load_from):
    config = tmp_path / 'toy_config.py'
    config.write_text("optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))\n"
                      'resume = False\nload_from = None\n')
    ckpt = tmp_path / 'iter_4.pth'
    ckpt.touch()
    train = _load_tool('train')
    flags = [f.format(ckpt=ckpt) for f in flags]
    cfg = train.setup_cfg(train.parse_args([str(config), '--amp', *flags]))
    assert cfg.resume is resume
    assert cfg.load_from == (load_from.format(ckpt=ckpt) if load_from else None)
    assert cfg.work_dir == os.path.join('work_dirs', 'toy_config')
    assert cfg.launcher == 'none'
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
