"""Text for open-vocabulary perception: vocabularies, templates, cached CLIP encoding, learned
context prompts."""
from .clip_text_encoder import encode_text_tokens
from .context_prompt_encoder import ContextPromptTextEncoder
from .templates import get_templates
from .text_embedder import TextEmbedder
from .vocabulary import Vocabulary, parse_class_names, read_class_names_file, resolve_class_names

__all__ = ['ContextPromptTextEncoder', 'TextEmbedder', 'Vocabulary', 'encode_text_tokens',
           'get_templates', 'parse_class_names', 'read_class_names_file', 'resolve_class_names']
