"""Text embeddings for open-vocabulary perception: templates, vocabularies, cached CLIP encoding."""
from .clip_text_encoder import encode_text_tokens
from .templates import get_templates
from .text_embedder import TextEmbedder
from .vocabulary import Vocabulary, parse_class_names, read_class_names_file

__all__ = ['TextEmbedder', 'Vocabulary', 'parse_class_names', 'read_class_names_file',
           'get_templates', 'encode_text_tokens']
