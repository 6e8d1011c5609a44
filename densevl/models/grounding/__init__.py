"""GroundVLP-style zero-shot visual grounding (plain PyTorch): expression parsing, subjects and
their categories, CLIP heat maps and the heat-map x detector fusion."""
from .albef import ALBEFITM, ALBEFConfig, load_albef_checkpoint
from .albef_heatmap import ALBEFHeatMap, ALBEFTokenizer
from .categories import SubjectCategoryMapper
from .clip_heatmap import CLIPHeatMap, resnet_gradcam, vit_relevancy
from .fusion import FusionResult, box_heat_scores, clip_boxes, fuse_heat_and_boxes
from .parsing import (
    VISUAL_POS,
    ExpressionParser,
    OfflineExpressionParser,
    ParsedExpression,
    build_expression_parser,
)

__all__ = ['ALBEFConfig', 'ALBEFHeatMap', 'ALBEFITM', 'ALBEFTokenizer', 'VISUAL_POS',
           'CLIPHeatMap', 'ExpressionParser', 'FusionResult',
           'OfflineExpressionParser', 'ParsedExpression', 'SubjectCategoryMapper',
           'box_heat_scores', 'build_expression_parser', 'clip_boxes', 'fuse_heat_and_boxes',
           'load_albef_checkpoint', 'resnet_gradcam', 'vit_relevancy']
