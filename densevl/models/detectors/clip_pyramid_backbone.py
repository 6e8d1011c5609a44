"""CLIP's image tower as a plain mmdet backbone, with its text tower kept aside for names."""
from __future__ import annotations

from torch import Tensor, nn

from ...registry import DET_MODELS
from ..clip import create_clip
from ..denseclip.denseclip_core import build_image_encoder
from ..text import TextEmbedder


@DET_MODELS.register_module()
class CLIPPyramidBackbone(nn.Module):
    """A CLIP image tower without its embedding head as a four-level pyramid (strides 4-32,
    :class:`CLIPViTFeaturePyramid` / :class:`CLIPDenseResNet`), plus the same CLIP's text tower
    for an open-vocabulary classifier.

    The text tower is not a sub-module: it is frozen, stays out of checkpoints and optimisers,
    and is reached through :meth:`text_embedder` (the library's :class:`TextEmbedder`, with its
    templates and its memory and disk cache).

    Args:
        clip: ``dict(model_name=..., pretrained=...)`` for :func:`create_clip` (a densevl zoo
            name has its packaged weights; an open_clip name needs ``pretrained`` for meaningful
            text embeddings, also at test time).
        vit: keyword arguments of :class:`CLIPViTFeaturePyramid` (ViT towers only).
        input_resolution: side of the input the positional grid is resized to; None keeps it.

    Shapes:
        images ``(B, 3, H, W)`` -> four levels ``(B, C_i, H / s_i, W / s_i)``, ``s_i`` 4-32.
    """

    def __init__(self, *, clip: dict, vit: dict | None = None,
                 input_resolution: int | None = None) -> None:
        super().__init__()
        bundle = create_clip(clip['model_name'], clip.get('pretrained'))
        self.encoder = build_image_encoder(bundle.model.visual, vit=vit,
                                           input_resolution=input_resolution)
        self.encoder.drop_embedding_head()
        text_model = bundle.model
        text_model.visual = nn.Identity()   # the tower above owns it; only encode_text is used
        self._text = (text_model.eval().requires_grad_(False), bundle.tokenizer, bundle.model_id)
        self.embed_dim = int(text_model.text_projection.shape[-1])
        self.random_weights = bundle.random_weights

    @property
    def level_channels(self) -> list[int]:
        return list(self.encoder.level_channels)

    def text_embedder(self, **kwargs) -> TextEmbedder:
        """A :class:`TextEmbedder` on this CLIP's text tower (``templates``, ``cache_dir``...)."""
        model, tokenizer, model_id = self._text
        return TextEmbedder(model, tokenizer, model_id=model_id, **kwargs)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.encoder.features(images))
