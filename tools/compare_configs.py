"""Resolve every leaf config of a checkout and compare two such snapshots key by key.

A refactoring of ``configs/`` (moving bases, sharing them through inheritance) should leave what
each leaf config resolves to unchanged. Dump the resolved configs before and after, then compare::

    # before the change, from a checkout of the commit before it (its own configs and densevl)
    git worktree add /tmp/before HEAD~1
    PYTHONPATH=/tmp/before python tools/compare_configs.py \\
        dump --root /tmp/before --out /tmp/configs_before.json
    # after it
    python tools/compare_configs.py dump --root . --out /tmp/configs_after.json
    python tools/compare_configs.py compare /tmp/configs_before.json /tmp/configs_after.json

A leaf config is any ``configs/**/*.py`` with no ``_base_`` folder on its path. ``dump`` resolves
each with ``mmengine.config.Config.fromfile`` (cwd and ``sys.path`` at the given root) and writes
``{relative path: cfg.to_dict()}`` as JSON: tuples become lists, anything JSON cannot hold its
``repr``, and absolute paths inside the root (``{{fileDirname}}`` expands to them) become
``<root>/...`` after ``os.path.normpath``, so that moving a file that points at ``../names/x.txt``
is no difference. Custom imports are not run unless ``--import-custom-modules`` is given: the
resolved dict does not depend on them. ``compare`` prints, per config, every added (+), removed
(-) and changed (~) key path with its values, then ``RESULT configs=N identical=M differing=K``
(configs present on one side only count as differing); it exits with 1 when any config differs.
"""
import argparse
import json
import os
import sys
from pathlib import Path

ROOT_MARK = '<root>'


def leaf_configs(root: Path) -> list[Path]:
    """Every config under root/configs that is not a base (no ``_base_`` folder on its path)."""
    configs = root / 'configs'
    return sorted(p for p in configs.rglob('*.py')
                  if '_base_' not in p.relative_to(configs).parts)


def jsonable(value, root: str):
    """The value with tuples as lists, types etc. as their repr and root paths as <root>/..."""
    if isinstance(value, dict):
        return {str(k): jsonable(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, root) for v in value]
    if isinstance(value, str):
        if value.startswith(root + os.sep) or value == root:
            return ROOT_MARK + os.path.normpath(value)[len(root):]
        return value.replace(root, ROOT_MARK)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return repr(value)


def dump(root: Path, out: Path, import_custom_modules: bool) -> None:
    from mmengine.config import Config
    root = root.resolve()
    os.chdir(root)
    sys.path.insert(0, str(root))
    resolved = {}
    for path in leaf_configs(root):
        name = str(path.relative_to(root))
        try:
            cfg = Config.fromfile(str(path), import_custom_modules=import_custom_modules)
            resolved[name] = jsonable(cfg.to_dict(), str(root))
        except Exception as error:  # noqa: BLE001  (recorded, and shows up in compare)
            resolved[name] = {'<error>': f'{type(error).__name__}: {error}'}
            print(f'ERROR {name}: {type(error).__name__}: {error}', file=sys.stderr)
    out.write_text(json.dumps(resolved, indent=1, sort_keys=True))
    print(f'{len(resolved)} configs of {root} -> {out}')
    package = sys.modules.get('densevl')
    if package is not None:  # imported by custom_imports: say whose, as it must be root's
        where = os.path.dirname(package.__file__)
        print(f'densevl imported from {where}' +
              ('' if where.startswith(str(root) + os.sep) else f' (NOT under {root})'))


def flatten(value, prefix: str = '') -> dict:
    """{'a.b[0].c': leaf} for nested dicts and lists; empty containers are leaves."""
    if isinstance(value, dict) and value:
        items = [(f'{prefix}.{k}' if prefix else str(k), v) for k, v in value.items()]
    elif isinstance(value, list) and value:
        items = [(f'{prefix}[{i}]', v) for i, v in enumerate(value)]
    else:
        return {prefix: value}
    flat = {}
    for key, item in items:
        flat.update(flatten(item, key))
    return flat


def compare(before: Path, after: Path) -> int:
    old_all, new_all = json.loads(before.read_text()), json.loads(after.read_text())
    identical = 0
    names = sorted(set(old_all) | set(new_all))
    for name in names:
        if name not in new_all or name not in old_all:
            print(f'{name}: only in {before if name in old_all else after}')
            continue
        errors = [side['<error>'] for side in (old_all[name], new_all[name]) if '<error>' in side]
        if errors:
            print(f'{name}: not resolved:', *errors, sep='\n  ')
            continue
        old, new = flatten(old_all[name]), flatten(new_all[name])
        lines = []
        for key in sorted(set(old) | set(new)):
            if key not in new:
                lines.append(f'  - {key} = {json.dumps(old[key])}')
            elif key not in old:
                lines.append(f'  + {key} = {json.dumps(new[key])}')
            elif old[key] != new[key] or type(old[key]) is not type(new[key]):
                lines.append(f'  ~ {key}: {json.dumps(old[key])} -> {json.dumps(new[key])}')
        if lines:
            print(f'{name}:', *lines, sep='\n')
        else:
            identical += 1
    print(f'RESULT configs={len(names)} identical={identical} differing={len(names) - identical}')
    return int(identical != len(names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('dump', help='resolve every leaf config of a checkout into a JSON file')
    p.add_argument('--root', type=Path, default=Path('.'), help='the checkout (default: .)')
    p.add_argument('--out', type=Path, required=True, help='the JSON file to write')
    p.add_argument('--import-custom-modules', action='store_true',
                   help="run the configs' custom_imports (needs the root's package importable)")
    p = sub.add_parser('compare', help='diff two dumps key by key')
    p.add_argument('before', type=Path)
    p.add_argument('after', type=Path)
    args = parser.parse_args()
    if args.command == 'dump':
        dump(args.root, args.out.resolve(), args.import_custom_modules)
        return 0
    return compare(args.before, args.after)


if __name__ == '__main__':
    sys.exit(main())
