"""CLIP heat maps of referring expressions, for GroundVLP-style box fusion (plain PyTorch).

GroundVLP (Shen et al., AAAI 2024) takes its heat map from ALBEF/TCL's cross-attention. On a CLIP
backbone, the heat map of an expression is the one ReCLIP (Subramanian et al., ACL 2022) uses:

* **ModifiedResNet** — Grad-CAM on ``layer4`` for the image-text logit
  ``s = logit_scale · cos(image, text)``: ``ReLU(Σ_c mean_hw(∂s/∂A_c) · A_c)``.
* **ViT** — gradient-weighted attention relevancy of the last block:
  ``mean_heads(ReLU(∂s/∂P ⊙ P))`` for the attention probabilities ``P``, the [CLS] row over the
  patches. open_clip's attention does not return ``P``; the last block is run by
  :func:`~densevl.models.clip.last_block.last_block_with_attention` instead.

The low-resolution map is upsampled bicubically (``align_corners=False``) to ``out_size`` and not
normalised, as in both references.

Deviation from GroundVLP: its *visual-word aggregation* averages the maps of the expression's
content-word tokens and the text [CLS]. CLIP has no per-token image maps (it pools its text at
the EOT token), so the expression's heat map is that of the whole prompt; optionally
(``subjects=``) it is averaged with the heat map of the subject word alone, the nearest
analogue of weighting the words that name the object.

Batching: the image is repeated once per text and the diagonal logits (image k with text k) are
summed, so one forward and one backward give every expression's map (images in a batch do not
interact in CLIP at eval time). ``max_batch`` bounds the copies run at once.

The registry's ``grad-cam`` package was considered and not used: its CAMs are min-max normalised
per image and resized by OpenCV in numpy, where GroundVLP and ReCLIP keep the raw map and resize
bicubically in torch, and a ViT's attention relevancy is not among its methods.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..clip.dense_resnet import CLIPDenseResNet
from ..clip.dense_vit import CLIPDenseViT
from ..clip.factory import image_tower, is_modified_resnet
from ..clip.last_block import last_block_with_attention
from .prompted_heatmap import PromptedHeatMap


def _logits(global_embedding: Tensor, text: Tensor, logit_scale: Tensor | float) -> Tensor:
    """Image k against text k: ``(K, C), (K, C) -> (K,)``; ``text`` already unit-norm."""
    image = global_embedding / global_embedding.norm(dim=-1, keepdim=True)
    return logit_scale * (image * text).sum(-1)


def resnet_gradcam(encoder: CLIPDenseResNet, images: Tensor, text: Tensor,
                   logit_scale: Tensor | float) -> Tensor:
    """ReCLIP's Grad-CAM on ``layer4`` of a ModifiedResNet, image k for text k.

    The global embedding is the attention pool's (positions resized to the grid, so any image
    size of at least 32 pixels works; at the native size it is open_clip's ``attnpool``).

    Shapes:
        images: ``(K, 3, H, W)``; text: ``(K, C)`` unit-norm; returns ``(K, H // 32, W // 32)``.
    """
    with torch.enable_grad():
        res5 = encoder.stages(images)[-1]
        global_embedding, _ = encoder.attention_pool(res5)
        logits = _logits(global_embedding, text, logit_scale)
        (grad,) = torch.autograd.grad(logits.sum(), res5)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    return (weights * res5.detach()).sum(1).float().clamp(min=0)


def vit_relevancy(encoder: CLIPDenseViT, images: Tensor, text: Tensor,
                  logit_scale: Tensor | float) -> Tensor:
    """Gradient-weighted attention relevancy of a ViT's last block, image k for text k:
    ``mean_heads(ReLU(∂s/∂P ⊙ P))[CLS, patches]`` (ReCLIP's CLIP-ViT recipe, one block).

    Shapes:
        images: ``(K, 3, H, W)``; text: ``(K, C)`` unit-norm; returns ``(K, H // p, W // p)``.
    """
    with torch.enable_grad():
        x, (gh, gw) = encoder.embed_patches(images)
        blocks = encoder.visual.transformer.resblocks
        for block in blocks[:-1]:
            x = block(x)
        x, probs = last_block_with_attention(blocks[-1], x)
        logits = _logits(encoder._global_pool(x), text, logit_scale)
        (grad,) = torch.autograd.grad(logits.sum(), probs)
    relevancy = (grad * probs.detach()).clamp(min=0).mean(dim=1)
    return relevancy[:, 0, 1:].float().reshape(-1, gh, gw)


class CLIPHeatMap(PromptedHeatMap):
    """Heat maps of referring expressions on one image from an open_clip CLIP model.

    Args:
        model: an open_clip ``CLIP`` (ModifiedResNet or ViT image tower), eval mode.
        tokenizer: ``list[str] -> LongTensor (N, context_length)`` (``CLIPBundle.tokenizer``).
        template: the prompt an expression is put in (ReCLIP's ``'a photo of {}'``; GroundVLP
            prompts ALBEF with ``'there is a {}'``).
        max_batch: the most image copies run in one forward/backward.

    Example::

        bundle = create_clip('RN50', pretrained='openai')
        heat = CLIPHeatMap(bundle.model, bundle.tokenizer)
        maps = heat(image, ['man in red shirt', 'left banana'], out_size=(480, 640))
    """

    def __init__(self, model: nn.Module, tokenizer: Callable[[list[str]], Tensor], *,
                 template: str = 'a photo of {}', max_batch: int = 16) -> None:
        super().__init__(template=template, max_batch=max_batch)
        self.model = model
        self.tokenizer = tokenizer
        visual = image_tower(model)
        self.encoder = (CLIPDenseResNet(visual, mode='plain') if is_modified_resnet(visual)
                        else CLIPDenseViT(visual, mode='plain'))

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """Unit-norm text embeddings of the prompted texts. Shapes: returns ``(K, C)``."""
        device = self.model.logit_scale.device
        tokens = self.tokenizer(self.prompts(texts)).to(device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def low_res(self, image: Tensor, text: Tensor) -> Tensor:
        """The heat maps of one image for text embeddings, at the encoder's grid.

        Shapes:
            image: ``(1, 3, H, W)`` or ``(3, H, W)``, normalised; text: ``(K, C)`` unit-norm;
            returns ``(K, h, w)``.
        """
        image = self.one_image(image)
        cam = resnet_gradcam if isinstance(self.encoder, CLIPDenseResNet) else vit_relevancy
        scale = self.model.logit_scale.exp().detach()
        maps = [cam(self.encoder, image.expand(len(chunk), -1, -1, -1), chunk, scale)
                for chunk in text.split(self.max_batch)]
        return torch.cat(maps)

    def forward(self, image: Tensor, expressions: Sequence[str], *, out_size: tuple[int, int],
                subjects: Sequence[str | None] | None = None) -> Tensor:
        """Heat maps of ``expressions`` on ``image``, upsampled to ``out_size``.

        Args:
            image: the prepared (resized, normalised) image.
            expressions: referring expressions; an empty list gives an empty result.
            out_size: ``(H, W)`` of the original image, where the boxes live.
            subjects: per expression, its subject word or None; where given, the expression's
                map is averaged with the subject's (see the module doc). None: expression only.

        Shapes:
            image: ``(1, 3, h, w)`` or ``(3, h, w)``; returns ``(K, H, W)`` float32.
        """
        expressions = list(expressions)
        if subjects is not None and len(subjects) != len(expressions):
            raise ValueError(f'{len(subjects)} subjects for {len(expressions)} expressions')
        if not expressions:
            return image.new_zeros((0, *out_size), dtype=torch.float32)
        extra = [(i, s) for i, s in enumerate(subjects or []) if s]
        texts = expressions + [s for _, s in extra]
        maps = self.low_res(image, self.encode_texts(texts).to(image.device))
        heat, subject_maps = maps[:len(expressions)].clone(), maps[len(expressions):]
        for (i, _), subject_map in zip(extra, subject_maps):
            heat[i] = (heat[i] + subject_map) / 2
        return self.upsample(heat, out_size)
