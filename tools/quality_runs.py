"""The proving ground's trained runs: one list, the single source of every training command.

``tools/benchmark_quality.py`` evaluates the trained rows of its table from these runs' outputs,
fills the missing ones with ``--train-missing`` (:func:`train_missing`) and prints their
commands (``--commands``, which the README's table of commands is checked against). A step is a
command of ``tools/`` (``tools/train.py`` for training) whose ``output`` file marks it done; a
per-seed step runs once per seed in ``work_dirs/seed{S}/{name}`` with ``randomness.seed=S``.
Methods added later append their steps to :data:`STEPS` and their rows to the benchmark.

Each finished step leaves ``quality_step.json`` beside its output: the seed, the command, the
wall and CPU seconds its process took (summed over resumed attempts) and the threads it ran with.
An interrupted training resumes from its last checkpoint (``tools/train.py --resume``).
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEEDS = (0, 1)
RECORD = 'quality_step.json'
# the trainings validate nothing: the benchmark evaluates every row itself, on more splits
NO_VALIDATION = ('val_cfg=None', 'val_dataloader=None', 'val_evaluator=None')


@dataclass(frozen=True)
class Step:
    """One command of the recorded procedure.

    ``argv`` and ``output`` may hold ``{seed}``, ``{root}`` (``WORK_DIRS/seed{seed}``) and
    ``{run}`` (``{root}/{name}``, the step's folder); ``output`` is the file that exists once
    the step has finished; ``needs`` names steps that must finish first (of the same seed, or
    seedless ones). A seedless step (``per_seed=False``) runs once, its outputs outside
    ``WORK_DIRS``. ``trains`` marks ``tools/train.py`` steps, resumed when interrupted.
    ``minutes`` is about the CPU time the step takes on the 2-core machine with one thread (as
    its ``quality_step.json`` records it); :func:`train_missing` starts the steps that head the
    longest chains first.
    """
    name: str
    argv: tuple[str, ...]
    output: str
    needs: tuple[str, ...] = ()
    per_seed: bool = True
    trains: bool = True
    minutes: float = 1.0

    def fields(self, work_dirs: Path, seed: int | None) -> dict:
        root = Path(work_dirs) / f'seed{seed}'
        return dict(seed=seed, root=root, run=root / self.name)

    def output_path(self, work_dirs: Path, seed: int | None) -> Path:
        return Path(self.output.format(**self.fields(work_dirs, seed)))

    def run_dir(self, work_dirs: Path, seed: int | None) -> Path:
        return self.output_path(work_dirs, seed).parent

    def done(self, work_dirs: Path, seed: int | None) -> bool:
        return self.output_path(work_dirs, seed).is_file()

    def command(self, work_dirs: Path, seed: int | None, python: str = 'python') -> list[str]:
        argv = [a.format(**self.fields(work_dirs, seed)) for a in self.argv]
        if self.trains and (self.run_dir(work_dirs, seed) / 'last_checkpoint').is_file():
            argv.append('--resume')
        return [python, *argv]

    def shell(self, work_dirs: Path = Path('work_dirs'), seed: int | str | None = '$S',
              python: str = '.venv/bin/python') -> str:
        """The command as the README writes it (``$S`` for the seed)."""
        fields = self.fields(work_dirs, seed)
        return ' '.join([python, *(_shell_word(a.format(**fields)) for a in self.argv)])


def _shell_word(word: str) -> str:
    """``word`` quoted for a shell, ``$S`` left to expand."""
    if '$S' not in word:
        return shlex.quote(word)
    return word if shlex.quote(word.replace('$S', '0')) == word.replace('$S', '0') \
        else f'"{word}"'


def train(name: str, config: str, output: str, *options: str, minutes: float,
          needs: tuple[str, ...] = ()) -> Step:
    """A ``tools/train.py`` step of ``config`` into ``{run}``, seeded, validating nothing."""
    return Step(name, ('tools/train.py', config, '--work-dir', '{run}', '--cfg-options',
                       'randomness.seed={seed}', *NO_VALIDATION, *options),
                f'{{run}}/{output}', needs=needs, minutes=minutes)


DENSECLIP_SEG = ('clip-fpn', 'denseclip', 'denseclip-agnostic')
SEG_RUN = '{}_clip-synthetic-tiny_400it_synthetic-64'
# run: (iterations, CPU minutes)
DET_RUNS = {'retinanet_denseclip_clip-synthetic-tiny_800it_synthetic-128': (800, 5.5),
            'mask-rcnn_denseclip_clip-synthetic-tiny_400it_synthetic-128': (400, 6.5),
            'mask-rcnn_denseclip_clip-synthetic-tiny-rn_400it_synthetic-128': (400, 6.0)}
OVSEG_RUN = 'ovseg_clip-synthetic-tiny_400it_synthetic-64'
CLIP_RUNS = dict(mpt='clip-mpt_clip-synthetic-tiny_5ep_region-nouns',
                 ft='clip-finetune_clip-synthetic-tiny_5ep_region-nouns',
                 ft_mpt='clip-finetune-mpt_clip-synthetic-tiny_5ep_region-nouns')
RECO_CONFIG = 'configs/reco/reco_clip-synthetic-tiny_training-free_synthetic-64.py'
RECO_INDEX = 'data/reco/unlabeled_clip-synthetic-tiny'  # the config's model.index
RECO_PSEUDO_LABELS = 'data/synthetic/reco_pseudo_labels/train'
RECO_PLUS_RUN = 'reco-plus_deeplabv3plus-r18-w16_4k_synthetic-64'
RECO_PLUS_ITERS = 4000
OVDET_RUN = 'ovdet-faster-rcnn_clip-synthetic-tiny_800it_synthetic-128'
REGION_NOUNS = '{root}/region_nouns/region_nouns.csv'


def _clip_tuning(key: str, config: str, *options: str, minutes: float,
                 needs: tuple[str, ...] = ()) -> Step:
    return train(CLIP_RUNS[key], f'configs/ovseg/{CLIP_RUNS[config]}.py', 'clip.pth',
                 f'train_dataloader.dataset.ann_file={REGION_NOUNS}', *options,
                 needs=('region_nouns', *needs), minutes=minutes)


STEPS: tuple[Step, ...] = (
    # DenseCLIP segmentation and its CLIP-FPN baseline (configs/denseclip)
    *(train(SEG_RUN.format(m), f'configs/denseclip/{SEG_RUN.format(m)}.py', 'iter_400.pth',
            minutes=minutes) for m, minutes in zip(DENSECLIP_SEG, (0.9, 1.5, 1.5))),
    # DenseCLIP detection (configs/denseclip/README_detection.md)
    *(train(run, f'configs/denseclip/{run}.py', f'iter_{iters}.pth', minutes=minutes)
      for run, (iters, minutes) in DET_RUNS.items()),
    # OVSeg (configs/ovseg): proposals, region-noun pairs mined with them, mask-adapted CLIPs
    train(OVSEG_RUN, f'configs/ovseg/{OVSEG_RUN}.py', 'iter_400.pth', minutes=0.9),
    Step('region_nouns', (
        'tools/mine_region_nouns.py', f'configs/ovseg/{OVSEG_RUN}.py',
        f'{{root}}/{OVSEG_RUN}/iter_400.pth', '--captions',
        'data/synthetic/coco/captions_train.json', '--images', 'data/synthetic/images/train',
        '--out', '{root}/region_nouns', '--batch-size', '32'),
         REGION_NOUNS, needs=(OVSEG_RUN,), trains=False, minutes=0.8),
    _clip_tuning('mpt', 'mpt', minutes=3.0),
    _clip_tuning('ft', 'ft', minutes=3.5),
    # mask prompts tuned on the fine-tuned CLIP
    _clip_tuning('ft_mpt', 'mpt', f'model.clip.pretrained={{root}}/{CLIP_RUNS["ft"]}/clip.pth',
                 needs=(CLIP_RUNS['ft'],), minutes=2.9),
    # ReCo (configs/reco): its retrieval index of the unlabeled split and ReCo's pseudo-labels
    # of the train split (training-free, one for all seeds), then ReCo+: DeepLabv3+ trained on them
    Step('reco_index', ('tools/build_retrieval_index.py', 'data/synthetic/unlabeled/images',
                        RECO_INDEX, '--model', 'clip-synthetic-tiny'),
         f'{RECO_INDEX}/manifest.json', per_seed=False, trains=False, minutes=0.3),
    Step('reco_pseudo_labels', ('tools/reco_pseudo_labels.py', RECO_CONFIG, '--split',
                                'images/train', '--out', RECO_PSEUDO_LABELS),
         f'{RECO_PSEUDO_LABELS}/pseudo_labels.json', needs=('reco_index',), per_seed=False,
         trains=False, minutes=1.0),
    train(RECO_PLUS_RUN, f'configs/reco/{RECO_PLUS_RUN}.py', f'iter_{RECO_PLUS_ITERS}.pth',
          needs=('reco_pseudo_labels',), minutes=6.0),
    # the open-vocabulary Faster R-CNN (configs/ovdet), also GroundVLP's detector
    train(OVDET_RUN, f'configs/ovdet/{OVDET_RUN}.py', 'iter_800.pth', minutes=7.5),
)
STEP = {step.name: step for step in STEPS}


def checkpoint(work_dirs: Path, name: str, seed: int) -> Path | None:
    """The output of step ``name`` for ``seed`` when it has finished, else None."""
    step = STEP[name]
    path = step.output_path(work_dirs, seed)
    return path if path.is_file() else None


def jobs(seeds=SEEDS, steps=STEPS) -> list[tuple[Step, int | None]]:
    """Every (step, seed) of the procedure, seedless steps once, in the list's order."""
    return [(s, None) for s in steps if not s.per_seed] + \
        [(s, seed) for seed in seeds for s in steps if s.per_seed]


def fill_commands(work_dirs: Path, missing, steps=STEPS) -> list[str]:
    """The commands that produce the (step, seed) pairs ``missing``, needs first, each once."""
    by_name = {s.name: s for s in steps}
    commands: dict[str, None] = {}

    def add(step: Step, seed: int | None) -> None:
        seed = seed if step.per_seed else None
        if step.done(work_dirs, seed):
            return
        for need in step.needs:
            add(by_name[need], seed)
        commands[step.shell(work_dirs, seed)] = None
    for step, seed in missing:
        add(step, seed)
    return list(commands)


def readme_commands(seeds=SEEDS) -> str:
    """The procedure as shell lines (what the README shows)."""
    lines = [s.shell(seed=None) for s in STEPS if not s.per_seed]
    lines.append(f'for S in {" ".join(map(str, seeds))}; do')
    lines += [f'  {s.shell()}' for s in STEPS if s.per_seed]
    lines.append('done')
    return '\n'.join(lines)


def with_needs(names, steps=STEPS) -> tuple[str, ...]:
    """``names`` and every step they need, transitively."""
    by_name = {s.name: s for s in steps}
    found: dict[str, None] = {}

    def add(name: str) -> None:
        for need in by_name[name].needs:
            add(need)
        found[name] = None
    for name in names:
        add(name)
    return tuple(found)


def record(work_dirs: Path, step: Step, seed: int | None) -> dict | None:
    """What a finished step recorded (seed, command, wall and CPU seconds), or None."""
    path = step.run_dir(work_dirs, seed) / RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def chain_minutes(steps=STEPS) -> dict[str, float]:
    """Each step's minutes plus those of the longest chain of steps that need it: the order
    that keeps both workers busy to the end (the longest chains first)."""
    needed_by: dict[str, list[str]] = {s.name: [] for s in steps}
    for s in steps:
        for need in s.needs:
            needed_by[need].append(s.name)
    by_name = {s.name: s for s in steps}
    chain: dict[str, float] = {}

    def length(name: str) -> float:
        if name not in chain:
            chain[name] = by_name[name].minutes + max(map(length, needed_by[name]), default=0.0)
        return chain[name]
    return {s.name: length(s.name) for s in steps}


def _log_path(work_dirs: Path, step: Step, seed: int | None) -> Path:
    return Path(work_dirs) / 'logs' / f'{step.name}{"" if seed is None else f"_seed{seed}"}.log'


def train_missing(work_dirs: Path, seeds=SEEDS, workers: int = 2, python: str = sys.executable,
                  threads: int = 1, names: tuple[str, ...] | None = None,
                  steps: tuple[Step, ...] = STEPS) -> None:
    """Run every missing step, ``workers`` at a time (each with ``threads`` threads), the
    heads of the longest chains first (:func:`chain_minutes`) as their needs allow, printing
    progress; a step that fails stops the
    procedure after the running ones end (their outputs stay; a rerun resumes). ``names``
    restricts it to those steps (their needs must be done)."""
    work_dirs = Path(work_dirs)
    by_name = {s.name: s for s in steps}
    chosen = [(s, seed) for s, seed in jobs(seeds, steps) if names is None or s.name in names]
    todo = [(s, seed) for s, seed in chosen if not s.done(work_dirs, seed)]
    # the longest chains first; a seedless step counts once per seed that needs it
    chain = chain_minutes(steps)
    todo.sort(key=lambda job: -chain[job[0].name] * (1 if job[0].per_seed else len(seeds)))
    total = len(todo)
    print(f'[quality] {len(chosen) - total} of {len(chosen)} steps done; '
          f'{total} to run, {workers} at a time, {threads} thread(s) each '
          f'(logs in {work_dirs / "logs"})', flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONUNBUFFERED='1')
    running: dict[subprocess.Popen, tuple[Step, int | None, float, object]] = {}
    started, failed = 0, []
    start_all = time.monotonic()

    def ready(step: Step, seed: int | None) -> bool:
        # a need is ready when its output exists and its process has ended (a training writes
        # its checkpoint before its last files)
        busy = {(s.name, s_seed) for s, s_seed, *_ in running.values()}
        return all(by_name[n].done(work_dirs, need_seed) and (n, need_seed) not in busy
                   for n in step.needs
                   for need_seed in [seed if by_name[n].per_seed else None])

    while todo or running:
        while not failed and len(running) < workers:
            pick = next(((s, seed) for s, seed in todo if ready(s, seed)), None)
            if pick is None:
                break
            todo.remove(pick)
            step, seed = pick
            started += 1
            log = _log_path(work_dirs, step, seed)
            log.parent.mkdir(parents=True, exist_ok=True)
            argv = step.command(work_dirs, seed, python)
            print(f'[quality {started}/{total}] start {step.name}'
                  f'{"" if seed is None else f" seed {seed}"}'
                  f'{" (resuming)" if "--resume" in argv else ""}: log {log}', flush=True)
            handle = open(log, 'a')
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=handle,
                                    stderr=subprocess.STDOUT)
            running[proc] = (step, seed, time.monotonic(), handle)
        if not running:
            if failed or not todo:
                break
            raise RuntimeError('steps wait for needs that no step produces: '
                               + ', '.join(s.name for s, _ in todo))
        pid, status, usage = os.wait4(-1, 0)
        proc = next(p for p in running if p.pid == pid)
        proc.returncode = os.waitstatus_to_exitcode(status)
        step, seed, begun, handle = running.pop(proc)
        handle.close()
        wall, cpu = time.monotonic() - begun, usage.ru_utime + usage.ru_stime
        label = f'{step.name}{"" if seed is None else f" seed {seed}"}'
        elapsed = f'{(time.monotonic() - start_all) / 60:.1f} min in'
        if proc.returncode != 0 or not step.done(work_dirs, seed):
            failed.append(label)
            print(f'[quality] FAILED {label} (exit {proc.returncode}) after {wall:.0f} s: see '
                  f'{_log_path(work_dirs, step, seed)}; a rerun resumes it', flush=True)
            continue
        _add_record(work_dirs, step, seed, wall, cpu, threads, python)
        print(f'[quality] done {label}: {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU '
              f'({elapsed}; {len(todo) + len(running)} left)', flush=True)
    if failed:
        raise SystemExit(f'[quality] {len(failed)} step(s) failed: {", ".join(failed)}')


def _add_record(work_dirs: Path, step: Step, seed: int | None, wall: float, cpu: float,
                threads: int, python: str) -> None:
    previous = record(work_dirs, step, seed) or {}
    entry = dict(seed=seed, command=step.shell(work_dirs, seed),
                 wall_s=round(previous.get('wall_s', 0.0) + wall, 1),
                 cpu_s=round(previous.get('cpu_s', 0.0) + cpu, 1),
                 attempts=previous.get('attempts', 0) + 1, threads=threads)
    (step.run_dir(work_dirs, seed) / RECORD).write_text(json.dumps(entry, indent=2) + '\n')
