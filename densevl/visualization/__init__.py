"""Pictures of dense predictions: segmentation overlays with legends and score heat maps."""
from .boxes import draw_boxes
from .grounding import draw_grounding
from .seg_overlay import draw_score_map, draw_sem_seg, legend_entries, make_palette, turbo_lut

__all__ = ['draw_boxes', 'draw_grounding', 'draw_score_map', 'draw_sem_seg', 'legend_entries',
           'make_palette', 'turbo_lut']
