"""Training/testing glue for mmengine runners.

Importing this package makes mmengine checkpoints loadable under torch>=2.6's weights-only
``torch.load`` (see :mod:`densevl.engine.checkpoint_compat`).
"""
from .checkpoint_compat import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

__all__ = ['allow_mmengine_checkpoints']
