"""Prompt templates that turn a class name into sentences for the CLIP text tower."""
from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from string import Formatter

# ViLD (Gu et al., 2022), the 14 prompts used for open-vocabulary detection.
VILD_TEMPLATES: tuple[str, ...] = (
    'a photo of a {}.',
    'This is a photo of a {}',
    'There is a {} in the scene',
    'There is the {} in the scene',
    'a photo of a {} in the scene',
    'a photo of a small {}.',
    'a photo of a medium {}.',
    'a photo of a large {}.',
    'This is a photo of a small {}.',
    'This is a photo of a medium {}.',
    'This is a photo of a large {}.',
    'There is a small {} in the scene.',
    'There is a medium {} in the scene.',
    'There is a large {} in the scene.',
)

SINGLE_TEMPLATES: tuple[str, ...] = ('a photo of a {}.',)

# The five scene prompts MaskCLIP's and ReCo's prompt engineering add after the 80 ImageNet ones.
SCENE_TEMPLATES: tuple[str, ...] = (
    'there is a {} in the scene.',
    'there is the {} in the scene.',
    'this is a {} in the scene.',
    'this is the {} in the scene.',
    'this is one {} in the scene.',
)

TEMPLATE_SETS = ('imagenet80', 'vild14', 'single', 'reco85')


@cache
def imagenet_templates() -> tuple[str, ...]:
    """The 80 OpenAI ImageNet prompts as ``'{}'`` format strings.

    Read from open_clip (where they are lambdas) so the strings stay the ones CLIP reported with.
    """
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(template('{}') for template in OPENAI_IMAGENET_TEMPLATES)


def get_templates(spec: str | Sequence[str]) -> list[str]:
    """Resolve a template spec into a list of ``'{}'`` format strings.

    Args:
        spec: ``'imagenet80'`` (the 80 OpenAI ImageNet prompts), ``'reco85'`` (those 80 then the
            5 scene prompts of MaskCLIP and ReCo, in their order), ``'vild14'`` (the 14 ViLD
            prompts), ``'single'`` (``'a photo of a {}.'``), or a non-empty list of strings that
            each contain ``'{}'`` exactly once, where the class name goes.

    Returns:
        A new list of templates; ``template.format(name)`` gives the prompt.

    Raises:
        ValueError: for an unknown name, an empty list, or a template without exactly one ``'{}'``.
    """
    accepted = (f"accepted: one of {', '.join(repr(s) for s in TEMPLATE_SETS)}, or a non-empty "
                "list of strings each containing '{}' once (e.g. ['a photo of a {}.'])")
    if isinstance(spec, str):
        if spec == 'imagenet80':
            return list(imagenet_templates())
        if spec == 'reco85':
            return [*imagenet_templates(), *SCENE_TEMPLATES]
        if spec == 'vild14':
            return list(VILD_TEMPLATES)
        if spec == 'single':
            return list(SINGLE_TEMPLATES)
        hint = (" (a single template must be given as a list: [" + repr(spec) + "])"
                if '{}' in spec else '')
        raise ValueError(f'unknown templates {spec!r}{hint}; {accepted}')
    if not isinstance(spec, Sequence):
        raise ValueError(f'templates must be a name or a list, got {type(spec).__name__}; '
                         f'{accepted}')
    if len(spec) == 0:
        raise ValueError(f'templates is an empty list; {accepted}')
    templates = []
    for i, template in enumerate(spec):
        if not isinstance(template, str):
            raise ValueError(f'templates[{i}] is a {type(template).__name__}, not a string; '
                             f'{accepted}')
        try:
            fields = [name for _, name, _, _ in Formatter().parse(template) if name is not None]
        except ValueError as err:
            raise ValueError(f'templates[{i}] = {template!r} is not a valid format string ({err}); '
                             "write literal braces as '{{' and '}}'") from err
        if fields != ['']:
            raise ValueError(f"templates[{i}] = {template!r} must contain '{{}}' exactly once "
                             f'(where the class name goes); {accepted}')
        templates.append(template)
    return templates
