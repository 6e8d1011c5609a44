"""Golden dense-CLIP tensors from the reference implementations (SCLIP, ClearCLIP, NACLIP).

A tiny CLIP in OpenAI's layout is built from a fixed seed, every weight rounded to fp16 and back
(as ``clip.load`` would have stored it), and loaded in fp32 into each reference through its own
state-dict loader. Each reference runs in a child process of this script with its own source tree
first on ``sys.path``, because their packages share names (``clip``, ``open_clip``) with each other
and with the installed open_clip. Nothing of the references is copied; they are run where they lie.

Model (seed ``SEED``): ViT width 128, 3 layers, 2 heads of 64, patch 16, 112 px (7x7 grid),
joint dim 64, QuickGELU; a throwaway 1-layer text tower of width 64 that only the loaders need and
that is not saved. Inputs: ``square`` (2, 3, 112, 112) and ``nonsquare`` (1, 3, 112, 80), the
latter forcing the references' bicubic ``(g + 0.1) / sqrt(N)`` positional-embedding resize.

Saved (one ``torch.save`` file): the fp16 visual weights under OpenAI key names (``visual.*``),
the fp16 inputs, per mode and input the reference's ``ln_post(x) @ proj`` patch tokens as
``(B, C, gh, gw)`` fp32, the plain CLIP image embedding, cross-checks between the references,
and the reference commits.

Usage::

    python tools/make_golden_dense_clip.py --mirror-root /work/.mirror --ref-root /tmp/refs \\
        --out tests/golden/dense_clip.pt

``--mirror-root`` extracts the pinned commits from bare mirrors into ``--ref-root`` first;
without it the trees under ``--ref-root`` are used as they are (and recorded as unverified).
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from _golden import extract_commit, fp16_round, golden_parser, is_stamped, max_abs, write_record

SEED = 1234
DIMS = dict(width=128, layers=3, head_width=64, patch_size=16, image_size=112, embed_dim=64,
            text_width=64, text_layers=1, context_length=77, vocab_size=49408)
NACLIP_STD = 5.0
INPUT_SHAPES = {'square': (2, 3, 112, 112), 'nonsquare': (1, 3, 112, 80)}
MODES = ('plain', 'maskclip', 'sclip', 'clearclip', 'naclip')
# name -> (GitHub repo, mirror folder, pinned commit, folder the forward lives in)
REFERENCES = {
    'SCLIP': ('wangf3014/SCLIP', 'wangf3014+SCLIP',
              'b56bd3014b9e8a3ee3450bcfc53700a67d627b7a', 'clip'),
    'ClearCLIP': ('mc-lan/ClearCLIP', 'mc-lan+ClearCLIP',
                  'ad68a404d55d48d27330b93554eb64a234ff717f', 'open_clip'),
    'NACLIP': ('sinahmr/NACLIP', 'sinahmr+NACLIP',
               '0cac3a651f753b11315ea799cfbfabf79da1bd76', 'clip'),
}
# mode -> (reference, the call that produced the golden tensor)
MODE_SOURCES = {
    'plain': ('SCLIP', 'clip/model.py CLIP.encode_image(x, return_all=True, csa=False)'),
    'maskclip': ('ClearCLIP', "open_clip/model.py CLIP.encode_image(x, 'MaskCLIP', "
                              'ignore_residual=True)'),
    'sclip': ('SCLIP', 'clip/model.py CLIP.encode_image(x, return_all=True, csa=True)'),
    'clearclip': ('ClearCLIP', "open_clip/model.py CLIP.encode_image(x, 'ClearCLIP', "
                               'ignore_residual=True)'),
    'naclip': ('NACLIP', "clip/model.py visual.set_params('reduced', 'naclip', 5.0); "
                         'CLIP.encode_image(x, return_all=True)'),
}
# (reference, mode) pairs whose outputs must agree with the golden reference of that mode
CROSS_CHECKS = (('ClearCLIP', 'plain'), ('NACLIP', 'plain'),
                ('ClearCLIP', 'sclip'), ('NACLIP', 'sclip'))
CROSS_ATOL = 1e-5
MIN_MODE_GAP = 1e-2


def _openai_shapes() -> dict[str, tuple[int, ...]]:
    """Key names and shapes of an OpenAI ``clip`` ViT state dict with the dims in ``DIMS``."""
    w, tw, c = DIMS['width'], DIMS['text_width'], DIMS['embed_dim']
    p, g = DIMS['patch_size'], DIMS['image_size'] // DIMS['patch_size']

    def block(prefix: str, d: int) -> dict[str, tuple[int, ...]]:
        return {f'{prefix}.ln_1.weight': (d,), f'{prefix}.ln_1.bias': (d,),
                f'{prefix}.attn.in_proj_weight': (3 * d, d),
                f'{prefix}.attn.in_proj_bias': (3 * d,),
                f'{prefix}.attn.out_proj.weight': (d, d), f'{prefix}.attn.out_proj.bias': (d,),
                f'{prefix}.ln_2.weight': (d,), f'{prefix}.ln_2.bias': (d,),
                f'{prefix}.mlp.c_fc.weight': (4 * d, d), f'{prefix}.mlp.c_fc.bias': (4 * d,),
                f'{prefix}.mlp.c_proj.weight': (d, 4 * d), f'{prefix}.mlp.c_proj.bias': (d,)}

    shapes = {'visual.class_embedding': (w,), 'visual.positional_embedding': (g * g + 1, w),
              'visual.proj': (w, c), 'visual.conv1.weight': (w, 3, p, p),
              'visual.ln_pre.weight': (w,), 'visual.ln_pre.bias': (w,)}
    for i in range(DIMS['layers']):
        shapes.update(block(f'visual.transformer.resblocks.{i}', w))
    shapes.update({'visual.ln_post.weight': (w,), 'visual.ln_post.bias': (w,),
                   'positional_embedding': (DIMS['context_length'], tw),
                   'text_projection': (tw, c), 'logit_scale': (),
                   'token_embedding.weight': (DIMS['vocab_size'], tw)})
    for i in range(DIMS['text_layers']):
        shapes.update(block(f'transformer.resblocks.{i}', tw))
    shapes.update({'ln_final.weight': (tw,), 'ln_final.bias': (tw,)})
    return shapes


def _init(name: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Seeded weights of CLIP-like magnitudes, chosen so that every mode gives a distinct output."""
    randn = torch.randn(shape, generator=gen)
    if name == 'logit_scale':
        return torch.tensor(math.log(1 / 0.07))
    if '.ln_' in name or name.startswith(('visual.ln_', 'ln_')):
        return 1.0 + 0.1 * randn if name.endswith('weight') else 0.05 * randn
    if name.endswith('positional_embedding'):
        return 0.5 * randn   # large enough that resizing it visibly changes the output
    if name == 'visual.class_embedding':
        return randn * shape[0] ** -0.5
    if name == 'token_embedding.weight':
        return 0.02 * randn
    if name.endswith('bias'):
        return (0.1 if 'in_proj' in name else 0.02) * randn
    if name.endswith('proj') or name == 'text_projection':   # (in, out) matrices
        return randn * shape[0] ** -0.5
    fan_in = math.prod(shape[1:])
    # < 1 so that q-q and k-k attention is not one-hot on the token itself, which would make
    # clearclip and naclip indistinguishable from maskclip
    gain = 0.75 if name.endswith('in_proj_weight') else 1.0
    return gain * randn * fan_in ** -0.5


def make_state_dict(seed: int = SEED) -> dict[str, torch.Tensor]:
    """The full OpenAI-layout state dict (visual + throwaway text tower), fp16-rounded fp32."""
    gen = torch.Generator().manual_seed(seed)
    return {k: fp16_round(_init(k, s, gen)).contiguous() for k, s in _openai_shapes().items()}


def make_inputs(seed: int = SEED + 1) -> dict[str, torch.Tensor]:
    """Seeded, fp16-rounded fp32 image batches, one per entry of ``INPUT_SHAPES``."""
    gen = torch.Generator().manual_seed(seed)
    return {k: fp16_round(torch.randn(s, generator=gen)) for k, s in INPUT_SHAPES.items()}


def _to_map(tokens: torch.Tensor, image: torch.Tensor, drop_cls: bool) -> torch.Tensor:
    # The references' segmentors reshape (B, N, C) to (B, C, H // p, W // p) row-major.
    p = DIMS['patch_size']
    tokens = tokens[:, 1:] if drop_cls else tokens
    gh, gw = image.shape[-2] // p, image.shape[-1] // p
    return tokens.permute(0, 2, 1).reshape(tokens.shape[0], -1, gh, gw).contiguous()


def run_worker(ref: str, ref_root: Path, io_path: Path) -> None:
    """Child process: import one reference, run its forwards, write the outputs."""
    src = str(ref_root / ref)
    sys.path.insert(0, src)
    torch.set_num_threads(2)
    payload = torch.load(io_path)
    state_dict, inputs = payload['state_dict'], payload['inputs']
    outputs: dict[str, dict[str, torch.Tensor]] = {}
    with torch.no_grad():
        if ref in ('SCLIP', 'NACLIP'):
            import clip.model as ref_model
            assert ref_model.__file__.startswith(src), ref_model.__file__
            model = ref_model.build_model(dict(state_dict)).float().eval()
            for name, x in inputs.items():
                if ref == 'SCLIP':
                    runs = {'plain': model.encode_image(x, return_all=True, csa=False),
                            'sclip': model.encode_image(x, return_all=True, csa=True)}
                    outputs.setdefault('global', {})[name] = model.encode_image(
                        x, return_all=False, csa=False)
                else:
                    runs = {}
                    for mode, params in (('naclip', ('reduced', 'naclip', NACLIP_STD)),
                                         ('plain', ('vanilla', 'vanilla', 0)),
                                         ('sclip', ('vanilla', 'csa', 0)),
                                         ('kk', ('reduced', 'kk', 0))):
                        model.visual.set_params(*params)
                        runs[mode] = model.encode_image(x, return_all=True)
                for mode, tokens in runs.items():
                    outputs.setdefault(mode, {})[name] = _to_map(tokens, x, drop_cls=True)
        elif ref == 'ClearCLIP':
            import open_clip.model as ref_model
            assert ref_model.__file__.startswith(src), ref_model.__file__
            # precision='fp32' in the reference's loader means cast_dtype=None, then .float()
            model = ref_model.build_model_from_openai_state_dict(
                dict(state_dict), quick_gelu=True, cast_dtype=None).float().eval()
            calls = {'maskclip': ('MaskCLIP', True), 'clearclip': ('ClearCLIP', True),
                     'plain': ('vanilla', False), 'sclip': ('SCLIP', False)}
            for name, x in inputs.items():
                for mode, (model_type, ignore_residual) in calls.items():
                    tokens = model.encode_image(x, model_type, ignore_residual)
                    outputs.setdefault(mode, {})[name] = _to_map(tokens, x, drop_cls=False)
        else:
            raise ValueError(ref)
    torch.save(outputs, io_path)


def _run_reference(ref: str, ref_root: Path, state_dict: dict, inputs: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        io_path = Path(tmp) / 'io.pt'
        torch.save({'state_dict': state_dict, 'inputs': inputs}, io_path)
        env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='2')
        cmd = [sys.executable, os.path.abspath(__file__), '--worker', ref,
               '--ref-root', str(ref_root), '--io', str(io_path)]
        # cwd outside the repo so that neither densevl nor a stray package shadows the reference
        subprocess.run(cmd, check=True, cwd=tmp, env=env)
        return torch.load(io_path)


def _extract(mirror_root: Path, ref_root: Path) -> None:
    """Extract each pinned commit's source folder from its bare mirror into ``ref_root``."""
    for name, (_, mirror, commit, folder) in REFERENCES.items():
        extract_commit(mirror_root / mirror / 'repo', commit, [folder], ref_root / name)


def _verified(ref_root: Path) -> dict[str, bool]:
    return {name: is_stamped(ref_root / name, commit)
            for name, (_, _, commit, _) in REFERENCES.items()}


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return max_abs(a - b)


def build_golden(ref_root: Path, verified: dict[str, bool]) -> dict:
    """Run every reference and assemble the golden record (see the module docstring)."""
    state_dict, inputs = make_state_dict(), make_inputs()
    results = {}
    for ref in REFERENCES:
        print(f'running {ref} ...', flush=True)
        results[ref] = _run_reference(ref, ref_root, state_dict, inputs)

    golden = {mode: results[MODE_SOURCES[mode][0]][mode] for mode in MODES}
    cross = {}
    for ref, mode in CROSS_CHECKS:
        golden_ref = MODE_SOURCES[mode][0]
        for name in inputs:
            diff = _max_diff(results[ref][mode][name], golden[mode][name])
            cross[f'{mode}/{name}: {ref} vs {golden_ref}'] = diff
            if diff > CROSS_ATOL:
                raise RuntimeError(f'{ref} and {golden_ref} disagree on {mode}/{name}: {diff:.3g}')
    gaps = {}
    for i, a in enumerate(MODES):
        for b in MODES[i + 1:]:
            gaps[f'{a} vs {b}'] = min(_max_diff(golden[a][n], golden[b][n]) for n in inputs)
            if gaps[f'{a} vs {b}'] < MIN_MODE_GAP:
                raise RuntimeError(f'modes {a} and {b} are too close to tell apart: {gaps}')
    # NACLIP without its neighbourhood prior must differ too, or the prior goes untested
    gaps['naclip vs naclip without prior (NACLIP kk)'] = min(
        _max_diff(golden['naclip'][n], results['NACLIP']['kk'][n]) for n in inputs)
    if gaps['naclip vs naclip without prior (NACLIP kk)'] < MIN_MODE_GAP:
        raise RuntimeError(f'the NACLIP prior barely changes the output: {gaps}')

    return {
        'format_version': 1,
        'seed': SEED,
        'input_seed': SEED + 1,
        'dims': dict(DIMS),
        'naclip_std': NACLIP_STD,
        'visual_state_dict': {k: v.half() for k, v in state_dict.items()
                              if k.startswith('visual.')},
        'inputs': {k: v.half() for k, v in inputs.items()},
        'golden': golden,
        'global_embedding': results['SCLIP']['global'],
        'mode_sources': {m: f'{r}: {call}' for m, (r, call) in MODE_SOURCES.items()},
        'references': {name: {'repo': repo, 'commit': commit, 'verified': verified[name]}
                       for name, (repo, _, commit, _) in REFERENCES.items()},
        'cross_checks_max_abs_diff': cross,
        'min_max_abs_diff_between_modes': gaps,
        'torch_version': str(torch.__version__),
    }


def main() -> None:
    parser = golden_parser(
        __doc__, ref_root_help='folder holding SCLIP/, ClearCLIP/ and NACLIP/ source trees',
        mirror_root_help='bare mirrors (<owner>+<name>/repo) to extract pinned commits from',
        default_out='tests/golden/dense_clip.pt')
    parser.add_argument('--worker', choices=sorted(REFERENCES), help=argparse.SUPPRESS)
    parser.add_argument('--io', type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        run_worker(args.worker, args.ref_root.resolve(), args.io)
        return
    torch.set_num_threads(2)
    ref_root = args.ref_root.resolve()
    if args.mirror_root is not None:
        _extract(args.mirror_root, ref_root)
    verified = _verified(ref_root)
    for name, ok in verified.items():
        if not ok:
            print(f'warning: {ref_root / name} is not stamped with commit {REFERENCES[name][2]}; '
                  'pass --mirror-root to extract the pinned commit', file=sys.stderr)

    record = build_golden(ref_root, verified)
    write_record(record, args.out)
    for key, diff in record['cross_checks_max_abs_diff'].items():
        print(f'cross-check {key}: max abs diff {diff:.2e}')
    for key, gap in record['min_max_abs_diff_between_modes'].items():
        print(f'mode gap {key}: {gap:.3f}')


if __name__ == '__main__':
    main()
