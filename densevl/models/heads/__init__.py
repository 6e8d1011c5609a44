"""Decode heads (mm adapters; need mmsegmentation)."""
from .text_cosine_fpn_head import TextCosineFPNHead

__all__ = ['TextCosineFPNHead']
