import open_clip
import pytest
import torch
from conftest import make_tiny_vit

from densevl.errors import WeightsUnavailableError
from densevl.models.clip import create_clip
from densevl.models.clip.model_zoo import MODEL_ZOO


def test_zoo_model_is_deterministic_and_flagged_random():
    a, b = create_clip('clip-tiny-random'), create_clip('clip-tiny-random')
    assert a.random_weights and a.model_id == 'clip-tiny-random@random'
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert a.tokenizer(['a cat']).shape == (1, 77)


def test_unknown_model_name_suggests_close_names():
    with pytest.raises(ValueError, match="unknown CLIP model 'ViT-B-61'.*Did you mean.*ViT-B-16"):
        create_clip('ViT-B-61')


def test_unknown_pretrained_tag_lists_the_tags():
    with pytest.raises(ValueError, match="no pretrained tag 'opneai'.*openai"):
        create_clip('ViT-B-16', pretrained='opneai')


def test_local_weights_file_loads(tmp_path):
    bundle = create_clip('clip-tiny-random')
    state = {k: v + 1 for k, v in bundle.model.state_dict().items()}
    path = tmp_path / 'tiny.pth'
    torch.save(state, path)
    loaded = create_clip('clip-tiny-random', pretrained=str(path))
    assert not loaded.random_weights
    assert torch.equal(loaded.model.visual.proj, state['visual.proj'])


def test_weights_of_another_architecture_name_the_keys(tmp_path):
    other = make_tiny_vit(width=64, layers=1)
    path = tmp_path / 'other.pth'
    torch.save(other.state_dict(), path)
    pattern = (r"(?s)does not fit the architecture 'clip-tiny-random-rn'.*"
               r'unexpected keys.*visual.class_embedding.*model name')
    with pytest.raises(ValueError, match=pattern):
        create_clip('clip-tiny-random-rn', pretrained=str(path))


def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        create_clip('clip-tiny-random', pretrained=str(tmp_path / 'nope.pt'))


def test_no_network_says_how_to_use_a_local_file(monkeypatch):
    real = open_clip.create_model

    def offline(name, pretrained=None, **kwargs):
        if pretrained:
            raise OSError('[Errno 101] Network is unreachable')
        return real(name, pretrained=None, **kwargs)

    monkeypatch.setattr(open_clip, 'create_model', offline)
    with pytest.raises(WeightsUnavailableError, match='pretrained=/path/to/file'):
        create_clip('RN50', pretrained='openai')


def test_zoo_entries_build():
    for name in MODEL_ZOO:
        bundle = create_clip(name)
        assert bundle.model.visual is not None


def test_openai_weights_get_quick_gelu_under_the_plain_name(monkeypatch):
    seen = {}

    def record(name, pretrained=None, **kwargs):
        seen.update(kwargs, name=name)
        raise OSError('offline')

    monkeypatch.setattr(open_clip, 'create_model', record)
    with pytest.raises(WeightsUnavailableError):
        create_clip('ViT-B-16', pretrained='openai')
    assert seen['force_quick_gelu'] is True
    with pytest.raises(WeightsUnavailableError):
        create_clip('ViT-B-16', pretrained='laion2b_s34b_b88k')
    assert seen['force_quick_gelu'] is False
