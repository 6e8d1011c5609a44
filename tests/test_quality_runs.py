"""The proving ground's one list of trained runs (tools/quality_runs.py) and its runner."""
import json
import sys
from pathlib import Path

import pytest
from _tools import load_tool

runs = load_tool('quality_runs')
REPO = Path(__file__).resolve().parents[1]


def test_every_step_names_real_files_and_known_needs():
    names = [s.name for s in runs.STEPS]
    assert len(names) == len(set(names))
    for step in runs.STEPS:
        assert (REPO / step.argv[0]).is_file(), step.argv[0]
        configs = [a for a in step.argv if a.startswith('configs/')]
        assert all((REPO / c).is_file() for c in configs), configs
        assert set(step.needs) <= set(names), step.needs
        if step.trains:
            assert 'randomness.seed={seed}' in step.argv  # every training is seeded
    outputs = [s.output_path(Path('w'), 0) for s in runs.STEPS]
    assert len(outputs) == len(set(outputs))


def test_readme_shows_the_lists_commands():
    """The README's commands of the trained rows are the list's, verbatim."""
    assert runs.readme_commands() in (REPO / 'README.md').read_text()


def test_shell_form_expands_the_seed():
    step = runs.STEP[runs.OVDET_RUN]
    line = step.shell()
    assert f'--work-dir work_dirs/seed$S/{runs.OVDET_RUN}' in line
    assert 'randomness.seed=$S' in line and "'" not in line


def _step(name, output, needs=(), fail=False, per_seed=True, minutes=1.0):
    """A step whose command writes its output (or fails), recording its argv."""
    code = ('import sys, pathlib; p = pathlib.Path(sys.argv[1]); '
            'p.parent.mkdir(parents=True, exist_ok=True); '
            + ('sys.exit(3)' if fail else 'p.write_text(" ".join(sys.argv[2:]))'))
    return runs.Step(name, ('-c', code, output, '{seed}'), output, needs=needs,
                     per_seed=per_seed, trains=False, minutes=minutes)


def test_train_missing_runs_needs_first_records_times_and_skips_done(tmp_path, capsys):
    steps = (_step('late', '{run}/out.txt', needs=('early', 'shared')),
             _step('early', '{run}/out.txt'),
             _step('shared', f'{tmp_path}/shared/out.txt', per_seed=False))
    runs.train_missing(tmp_path, seeds=(0, 1), workers=2, python=sys.executable, steps=steps)
    for seed in (0, 1):
        assert (tmp_path / f'seed{seed}/late/out.txt').read_text() == str(seed)
        record = json.loads((tmp_path / f'seed{seed}/early/quality_step.json').read_text())
        assert record['seed'] == seed and record['wall_s'] >= 0 and record['attempts'] == 1
    log = capsys.readouterr().out
    assert '0 of 5 steps done; 5 to run' in log and log.count('] start ') == 5
    # 'late' started only after both of its needs had finished, in every seed
    lines = log.splitlines()
    for seed in (0, 1):
        start_late = lines.index(next(x for x in lines if f'start late seed {seed}' in x))
        assert any(f'done early seed {seed}' in x for x in lines[:start_late])
        assert any('done shared' in x for x in lines[:start_late])
    runs.train_missing(tmp_path, seeds=(0, 1), python=sys.executable, steps=steps)
    assert '5 of 5 steps done; 0 to run' in capsys.readouterr().out


def test_a_failed_step_stops_the_procedure_and_keeps_finished_outputs(tmp_path):
    steps = (_step('ok', '{run}/out.txt', minutes=5.0), _step('bad', '{run}/out.txt', fail=True),
             _step('after', '{run}/out.txt', needs=('bad',)))
    with pytest.raises(SystemExit, match='1 step.*failed: bad seed 0'):
        runs.train_missing(tmp_path, seeds=(0,), workers=1, python=sys.executable, steps=steps)
    assert (tmp_path / 'seed0/ok/out.txt').is_file()
    assert not (tmp_path / 'seed0/after').exists()
    assert (tmp_path / 'logs/bad_seed0.log').is_file()
    assert not (tmp_path / 'seed0/bad/quality_step.json').exists()


def test_an_interrupted_training_resumes(tmp_path):
    step = runs.STEP[runs.OVDET_RUN]
    assert '--resume' not in step.command(tmp_path, 0)
    run_dir = step.run_dir(tmp_path, 0)
    run_dir.mkdir(parents=True)
    (run_dir / 'last_checkpoint').write_text(str(run_dir / 'iter_400.pth'))
    assert step.command(tmp_path, 0)[-1] == '--resume'


def test_fill_commands_lists_needs_first_once(tmp_path):
    steps = (_step('a', '{run}/out.txt'), _step('b', '{run}/out.txt', needs=('a',)),
             _step('c', '{run}/out.txt', needs=('a',)))
    by_name = {s.name: s for s in steps}
    commands = runs.fill_commands(tmp_path, [(by_name['b'], 0), (by_name['c'], 0)], steps)
    assert [c.split()[-2].split('/')[-2] for c in commands] == ['a', 'b', 'c']


def test_the_longest_chains_start_first(tmp_path, capsys):
    """With one worker, the head of the longest chain of minutes runs first, then its chain
    as needs allow, and a short step with nothing after it waits."""
    steps = (_step('short', '{run}/out.txt', minutes=5.0),
             _step('head', '{run}/out.txt', minutes=1.0),
             _step('tail', '{run}/out.txt', needs=('head',), minutes=6.0))
    assert runs.chain_minutes(steps) == dict(short=5.0, head=7.0, tail=6.0)
    runs.train_missing(tmp_path, seeds=(0,), workers=1, python=sys.executable, steps=steps)
    started = [line.split(' start ')[1].split()[0] for line in capsys.readouterr().out.splitlines()
               if ' start ' in line]
    assert started == ['head', 'tail', 'short']

