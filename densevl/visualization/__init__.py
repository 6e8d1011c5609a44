"""Pictures of dense predictions: segmentation overlays with legends and score heat maps."""
from .seg_overlay import draw_score_map, draw_sem_seg, legend_entries, make_palette, turbo_lut

__all__ = ['make_palette', 'legend_entries', 'draw_sem_seg', 'draw_score_map', 'turbo_lut']
