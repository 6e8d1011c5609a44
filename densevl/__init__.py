"""densevl: dense open-vocabulary perception with CLIP."""
from .version import __version__

__all__ = ['__version__']
