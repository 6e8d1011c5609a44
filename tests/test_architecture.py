"""The pieces every method plugs into: one vocabulary, one inference protocol, one segmenter
interface (the dense predictor itself is tested in test_segmenter.py)."""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

import densevl.models.mm_adapters  # noqa: F401
from densevl.apis import OpenVocabSegInferencer
from densevl.models.clip.model_zoo import SYNTHETIC_PROTOCOL
from densevl.models.inference_protocol import (
    OPENAI_MEAN,
    REFERENCE_PROTOCOL,
    InferenceProtocol,
    SlideWindows,
    default_protocol,
)
from densevl.models.segmentors import OpenVocabSegmenter, ZeroShotSegmenter
from densevl.models.segmentors.clip_encoder_decoder import CLIPEncoderDecoder
from densevl.models.segmentors.training_free import TrainingFreeSegmentor
from densevl.models.text import Vocabulary, resolve_class_names

ROOT = Path(__file__).resolve().parents[1]


# ----- vocabulary ------------------------------------------------------------------------------

def test_resolve_class_names_from_a_list_a_file_or_a_dataset(tmp_path):
    assert resolve_class_names(None) is None
    assert resolve_class_names([' cat ', 'tv; monitor']) == ['cat', 'tv; monitor']
    names = tmp_path / 'names.txt'
    names.write_text('sky\ncar; automobile\n\n')
    assert resolve_class_names(str(names)) == ['sky', 'car; automobile']
    assert resolve_class_names(names) == ['sky', 'car; automobile']
    ade = resolve_class_names('ADE20KDataset')
    assert len(ade) == 150 and ade[0] == 'wall'
    assert len(resolve_class_names('CocoDataset')) == 80       # mmdet's registry too
    with pytest.raises(ValueError, match='neither a names file nor a registered dataset'):
        resolve_class_names('no_such_file.txt')
    with pytest.raises(ValueError, match='duplicates'):
        resolve_class_names(['cat', 'Cat'])


def test_vocabulary_parse_tokens_and_pooled():
    vocab = Vocabulary.parse(['cat', 'tv; monitor'])
    assert vocab.queries == ['cat', 'tv', 'monitor'] and vocab.has_synonyms
    assert vocab.query_to_class.tolist() == [0, 1, 1] and vocab.embeddings is None
    tokens = torch.arange(6).view(3, 2)
    assert torch.equal(vocab.with_tokens(tokens).tokens, tokens)
    with pytest.raises(ValueError, match='3 queries but tokens'):
        vocab.with_tokens(tokens[:2])
    pooled = vocab.pooled()
    assert pooled.queries == ['cat', 'tv; monitor'] and not pooled.has_synonyms
    scores = torch.tensor([[0.1, 0.7, 0.3]])
    assert torch.equal(vocab.pool_synonyms(scores), torch.tensor([[0.1, 0.7]]))


# ----- inference protocol ----------------------------------------------------------------------

def test_slide_windows_from_every_config_form():
    assert SlideWindows.from_config(None) is None
    assert SlideWindows.from_config(dict(crop=224, stride=112)) == SlideWindows((224, 224),
                                                                                 (112, 112))
    assert SlideWindows.from_config(dict(mode='slide', crop_size=(512, 512),
                                         stride=(341, 341))) == SlideWindows(512, 341)
    assert SlideWindows.from_config(dict(mode='whole')) == SlideWindows.whole_input()
    with pytest.raises(ValueError, match="'slide' or 'whole'"):
        SlideWindows.from_config(dict(mode='sliding'))
    with pytest.raises(ValueError, match='need crop and stride'):
        SlideWindows.from_config(dict(crop=224))
    with pytest.raises(ValueError, match='both crop and stride'):
        SlideWindows(224, None)


def test_protocol_defaults_are_recorded_once():
    assert REFERENCE_PROTOCOL.mode == 'naclip' and REFERENCE_PROTOCOL.short_side == 336
    assert REFERENCE_PROTOCOL.slide == SlideWindows(224, 112)
    assert REFERENCE_PROTOCOL.background_index == -1 and REFERENCE_PROTOCOL.mean == OPENAI_MEAN
    assert default_protocol('ViT-B-16') is REFERENCE_PROTOCOL
    assert default_protocol('clip-synthetic-tiny') is SYNTHETIC_PROTOCOL
    assert SYNTHETIC_PROTOCOL.slide is None and SYNTHETIC_PROTOCOL.templates == ('{}',)
    changed = REFERENCE_PROTOCOL.updated(mode='sclip', slide=None)
    assert changed.mode == 'sclip' and changed.slide is None and changed.short_side == 336
    with pytest.raises(TypeError, match='unknown inference protocol field'):
        REFERENCE_PROTOCOL.updated(windows=None)
    with pytest.raises(ValueError, match='probability'):
        InferenceProtocol(prob_threshold=1.5)
    assert REFERENCE_PROTOCOL.background(0.3) == dict(prob_threshold=0.3, background_index=-1)


def test_segmenters_follow_the_model_protocol():
    segmenter = ZeroShotSegmenter(model_name='clip-tiny-random', text_cache_dir=False)
    assert isinstance(segmenter, OpenVocabSegmenter)
    assert segmenter.protocol == REFERENCE_PROTOCOL
    assert segmenter.encoder.mode == 'naclip'
    assert segmenter.predictor.slide == SlideWindows(224, 112)
    sclip = ZeroShotSegmenter(model_name='clip-tiny-random', mode='sclip', slide=None,
                              text_cache_dir=False)
    assert sclip.encoder.mode == 'sclip' and sclip.predictor.slide is None


def test_inferencer_reads_the_protocol_of_a_zoo_name_and_of_a_config():
    zoo = OpenVocabSegInferencer('clip-synthetic-tiny', device='cpu')
    assert zoo.protocol == SYNTHETIC_PROTOCOL
    changed = OpenVocabSegInferencer('clip-synthetic-tiny', device='cpu', mode='maskclip')
    assert changed.protocol == SYNTHETIC_PROTOCOL.updated(mode='maskclip')
    config = ROOT / 'configs/training_free/sclip_clip-synthetic-tiny_training-free_synthetic-64.py'
    from_config = OpenVocabSegInferencer(str(config), device='cpu')
    # the config's test pipeline keeps the scenes' own size
    assert from_config.protocol.mode == 'sclip' and from_config.protocol.short_side is None
    assert from_config.protocol.mean == pytest.approx(OPENAI_MEAN)
    with pytest.raises(ValueError, match='a config records how its model is run'):
        OpenVocabSegInferencer(str(config), device='cpu', mode='naclip')


@pytest.mark.parametrize('cls', [ZeroShotSegmenter, CLIPEncoderDecoder])
def test_every_segmentor_has_the_one_segment_signature(cls):
    expected = inspect.signature(OpenVocabSegmenter.segment)
    assert inspect.signature(cls.segment) == expected


def test_the_mmseg_training_free_adapter_segments_as_its_core():
    model = TrainingFreeSegmentor(clip=dict(model_name='clip-tiny-random'), mode='sclip',
                                  templates=['a {}.'], slide=None, text_cache_dir=False)
    assert isinstance(model, OpenVocabSegmenter) and model.protocol is model.core.protocol
    images, texts = torch.randn(1, 3, 48, 64), ['cat', 'dog; puppy', 'sky']
    options = dict(out_size=(24, 32), prob_threshold=0.4, background_index=-1,
                   return_probs=True)
    got, expected = model.segment(images, texts, **options), model.core.segment(images, texts,
                                                                                **options)
    assert torch.equal(got[0].labels, expected[0].labels)
    assert torch.equal(got[0].class_probs, expected[0].class_probs)
    with pytest.raises(TypeError):
        model.segment(images, texts, (24, 32))      # the options are keyword-only
