"""Train the proving ground's tiny CLIP contrastively on fresh synthetic scenes.

Every step draws new ``clip_train`` scenes (see ``densevl.datasets.synthetic.world``), so the model
never sees an image twice. Half of the captions are the scene's full caption ("a brick background
with a small yellow striped heart and ..."); the other half name a random subset of what is in
the picture ("yellow, brick"), so that single class words (the zero-shot prompts) are in the
text tower's language too.

Usage:
    python tools/train_tiny_clip.py --out densevl/model_zoo/clip_synthetic_tiny.pt \
        --work-dir work_dirs/tiny_clip --steps 6000 --arch vit
    python tools/train_tiny_clip.py ... --resume      # continue from work-dir/last.pt
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset

from densevl.datasets.synthetic import DEFAULT_SPEC, sample_scene
from densevl.models.clip.model_zoo import SYNTHETIC_CONFIGS

MEAN = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(1, 3, 1, 1) * 255
STD = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1) * 255


def concept_caption(scene, rng: np.random.Generator) -> str:
    """A short caption naming a random non-empty subset of the scene's stuff and colours."""
    concepts = list(dict.fromkeys([*scene.stuff, *(o.colour for o in scene.objects)]))
    keep = rng.random(len(concepts)) < 0.6
    if not keep.any():
        keep[rng.integers(len(concepts))] = True
    chosen = [c for c, k in zip(concepts, keep) if k]
    return ', '.join(chosen[i] for i in rng.permutation(len(chosen)))


class SceneStream(IterableDataset):
    """Endless batches of (images uint8 (B, S, S, 3), tokens (B, L)) from a seeded generator."""

    def __init__(self, *, seed: int, batch_size: int, size: int, tokenizer,
                 concept_prob: float = 0.5) -> None:
        self.seed, self.batch_size, self.size = seed, batch_size, size
        self.tokenizer, self.concept_prob = tokenizer, concept_prob

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        while True:
            images = np.empty((self.batch_size, self.size, self.size, 3), np.uint8)
            captions = []
            for b in range(self.batch_size):
                scene = sample_scene(rng, DEFAULT_SPEC, size=self.size, split='clip_train')
                images[b] = scene.image
                captions.append(concept_caption(scene, rng) if rng.random() < self.concept_prob
                                else scene.caption)
            yield torch.from_numpy(images), self.tokenizer(captions)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        exempt = p.ndim < 2 or 'embedding' in name or 'logit_scale' in name
        (no_decay if exempt else decay).append(p)
    return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]


def lr_at(step: int, steps: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return 0.5 * base * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + '.tmp')
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', choices=sorted(SYNTHETIC_CONFIGS), default='vit')
    parser.add_argument('--out', required=True, help='fp16 weights written at the end')
    parser.add_argument('--work-dir', default='work_dirs/tiny_clip')
    parser.add_argument('--steps', type=int, default=6000)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--weight-decay', type=float, default=0.1)
    parser.add_argument('--warmup', type=int, default=200)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--log-interval', type=int, default=50)
    parser.add_argument('--save-interval', type=int, default=500)
    parser.add_argument('--resume', action='store_true')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = SYNTHETIC_CONFIGS[args.arch]
    torch.manual_seed(args.seed)
    model = open_clip.CLIP(**cfg['config'])
    size = cfg['config']['vision_cfg']['image_size']
    tokenizer = open_clip.get_tokenizer('ViT-B-32',
                                        context_length=cfg['config']['text_cfg']['context_length'])
    optimizer = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr,
                                  betas=(0.9, 0.98), eps=1e-6)
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    start = 0
    if args.resume and (work_dir / 'last.pt').is_file():
        state = torch.load(work_dir / 'last.pt', weights_only=True)
        model.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        start = int(state['step'])
        print(f'resumed from step {start}', flush=True)
    # A resumed run draws scenes from a fresh stream: the data are endless and i.i.d.
    stream = SceneStream(seed=args.seed * 1000 + start, batch_size=args.batch_size, size=size,
                         tokenizer=tokenizer)
    loader = iter(DataLoader(stream, batch_size=None, num_workers=1, prefetch_factor=4))
    log = open(work_dir / 'train_log.jsonl', 'a')
    print(f'{args.arch}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, '
          f'{args.steps} steps of {args.batch_size} scenes at {size}px', flush=True)
    model.train()
    tic = time.time()
    for step in range(start, args.steps):
        images, tokens = next(loader)
        images = (images.permute(0, 3, 1, 2).float() - MEAN) / STD
        for group in optimizer.param_groups:
            group['lr'] = lr_at(step, args.steps, args.lr, args.warmup)
        image_emb = F.normalize(model.encode_image(images), dim=-1)
        text_emb = F.normalize(model.encode_text(tokens), dim=-1)
        logits = model.logit_scale.exp() * image_emb @ text_emb.T
        target = torch.arange(len(logits))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if (step + 1) % args.log_interval == 0 or step + 1 == args.steps:
            acc = (logits.argmax(1) == target).float().mean().item()
            rate = (step + 1 - start) / (time.time() - tic)
            record = dict(step=step + 1, loss=round(loss.item(), 4), i2t_acc=round(acc, 4),
                          logit_scale=round(model.logit_scale.exp().item(), 2),
                          lr=optimizer.param_groups[0]['lr'], steps_per_s=round(rate, 3))
            log.write(json.dumps(record) + '\n')
            log.flush()
            eta = (args.steps - step - 1) / max(rate, 1e-9) / 60
            print(f'step {step + 1}/{args.steps}  loss {loss.item():.3f}  in-batch acc {acc:.2f}'
                  f'  scale {record["logit_scale"]}  {rate:.2f} it/s  eta {eta:.0f} min',
                  flush=True)
        if (step + 1) % args.save_interval == 0 or step + 1 == args.steps:
            save_atomic(dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                             step=step + 1), work_dir / 'last.pt')
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_atomic({k: v.half() for k, v in model.state_dict().items()}, out)
    print(f'wrote {out} ({out.stat().st_size / 1e6:.1f} MB)', flush=True)


if __name__ == '__main__':
    sys.exit(main())
