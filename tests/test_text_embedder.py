"""Tests of densevl.models.text on a tiny random open_clip model (no downloads)."""
import copy
import logging

import open_clip
import pytest
import torch
import torch.nn.functional as F

import densevl.models.text.text_embedder as text_embedder_module
from densevl.models.text import (
    TextEmbedder,
    Vocabulary,
    encode_text_tokens,
    get_templates,
    parse_class_names,
    read_class_names_file,
)

TWO_TEMPLATES = ['a photo of a {}.', 'a blurry drawing of the {} on a table.']


def tiny_clip(layers: int = 1, heads: int = 1, seed: int = 0) -> open_clip.CLIP:
    torch.manual_seed(seed)
    model = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=1, head_width=64),
        text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=heads, layers=layers))
    return model.eval()


@pytest.fixture(scope='module')
def model():
    return tiny_clip()


@pytest.fixture(scope='module')
def tokenizer():
    return open_clip.get_tokenizer('ViT-B-32')  # ships its BPE vocabulary: works offline


@pytest.fixture
def count_encoder(monkeypatch):
    """Counts the prompts that reach the text tower."""
    calls = []

    def counting(clip_model, tokens):
        calls.append(tokens.shape[0])
        return encode_text_tokens(clip_model, tokens)

    monkeypatch.setattr(text_embedder_module, 'encode_text_tokens', counting)
    return calls


def reference_embedding(model, tokenizer, name, templates):
    """The reference protocol, written out: normalise each prompt, mean, normalise."""
    with torch.no_grad():
        feats = model.encode_text(tokenizer([t.format(name) for t in templates]))
    return F.normalize(F.normalize(feats, dim=-1).mean(0), dim=-1)


# --- templates ---------------------------------------------------------------------------------

def test_template_sets():
    imagenet = get_templates('imagenet80')
    assert len(imagenet) == 80 and len(set(imagenet)) == 80
    assert imagenet[0] == 'a bad photo of a {}.' and imagenet[-1] == 'a tattoo of the {}.'
    vild = get_templates('vild14')
    assert len(vild) == 14 and vild[1] == 'This is a photo of a {}'
    assert get_templates('single') == ['a photo of a {}.']
    assert get_templates(('itap of a {}.',)) == ['itap of a {}.']
    assert all(t.count('{}') == 1 for t in imagenet + vild)


@pytest.mark.parametrize('spec, match', [
    ('imagenet', "unknown templates 'imagenet'.*'imagenet80', 'vild14', 'single'"),
    ('a photo of a {}.', r"as a list: \['a photo of a \{\}.'\]"),
    ([], 'empty list'),
    (['a photo of a cat.'], r"templates\[0\].*exactly once"),
    (['a {} and a {}'], r"templates\[0\].*exactly once"),
    (['ok {}', 'a {x}'], r"templates\[1\].*exactly once"),
    (['a {} {'], r"templates\[0\].*not a valid format string"),
    (['a {}', 3], r"templates\[1\] is a int"),
    (None, 'must be a name or a list'),
])
def test_bad_templates(spec, match):
    with pytest.raises(ValueError, match=match):
        get_templates(spec)


# --- vocabulary --------------------------------------------------------------------------------

def test_parse_class_names():
    assert parse_class_names(['cat', ' tv ;monitor ', 'traffic light']) == [
        ['cat'], ['tv', 'monitor'], ['traffic light']]


@pytest.mark.parametrize('names, error, match', [
    ([], ValueError, 'vocabulary is empty'),
    (['cat', '  '], ValueError, r'class_names\[1\] is blank'),
    (['tv;; monitor'], ValueError, r"class_names\[0\] = 'tv;; monitor' has a blank synonym.*';'"),
    (['tv;'], ValueError, 'blank synonym'),
    (['Dog', 'cat', ' dog'], ValueError,
     r"'dog' in class_names\[2\] duplicates 'Dog' in class_names\[0\].*remove one"),
    (['tv; TV'], ValueError, r"'TV' in class_names\[0\] duplicates 'tv'"),
    ('cat', TypeError, r"single string 'cat'.*\['cat'\]"),
    (['cat', None], TypeError, r'class_names\[1\] is a NoneType'),
])
def test_parse_class_names_errors(names, error, match):
    with pytest.raises(error, match=match):
        parse_class_names(names)


def test_read_class_names_file(tmp_path):
    path = tmp_path / 'names.txt'
    path.write_text('cat\n tv; monitor\nperson\n\n  \n', encoding='utf-8')
    assert read_class_names_file(path) == ['cat', 'tv; monitor', 'person']
    path.write_text('cat\n\ndog\n', encoding='utf-8')
    with pytest.raises(ValueError, match="line 2 of .*names.txt' is blank"):
        read_class_names_file(path)
    path.write_text('cat\nCat\n', encoding='utf-8')
    with pytest.raises(ValueError, match="'Cat' in line 2 .* duplicates 'cat' in line 1"):
        read_class_names_file(path)
    with pytest.raises(FileNotFoundError, match="missing.txt' does not exist.*one class per line"):
        read_class_names_file(tmp_path / 'missing.txt')


def make_vocabulary(synonyms_per_class, dim=8):
    q2c = torch.tensor([k for k, n in enumerate(synonyms_per_class) for _ in range(n)])
    queries = [f'q{i}' for i in range(len(q2c))]
    names = [f'c{k}' for k in range(len(synonyms_per_class))]
    return Vocabulary(names, queries, q2c, F.normalize(torch.randn(len(q2c), dim), dim=-1))


def test_pool_synonyms_is_max_per_class():
    vocab = make_vocabulary([1, 3, 2, 1])
    assert (vocab.num_classes, vocab.num_queries) == (4, 7)
    probs = torch.randn(2, 7, 5, 6).softmax(dim=1)
    pooled = vocab.pool_synonyms(probs)
    assert pooled.shape == (2, 4, 5, 6)
    for k in range(4):
        expected = probs[:, vocab.query_to_class == k].amax(dim=1)
        assert torch.equal(pooled[:, k], expected)
    flat = probs.permute(0, 2, 3, 1).reshape(-1, 7)  # (N, Q) with the queries last
    assert torch.equal(vocab.pool_synonyms(flat, dim=-1),
                       pooled.permute(0, 2, 3, 1).reshape(-1, 4))
    with pytest.raises(ValueError, match='has 5 entries along dim 2.*7 queries'):
        vocab.pool_synonyms(probs, dim=2)


def test_pool_synonyms_without_synonyms_is_identity():
    vocab = make_vocabulary([1, 1, 1])
    probs = torch.rand(2, 3, 4)
    assert vocab.pool_synonyms(probs) is probs


# --- encode_text_tokens ------------------------------------------------------------------------

@pytest.mark.parametrize('layers, heads', [(1, 1), (2, 2)])
def test_encode_text_tokens_equals_encode_text(tokenizer, layers, heads):
    model = tiny_clip(layers, heads, seed=1)
    tokens = tokenizer(['cat', 'a photo of a very large traffic light in the scene.', 'tv', ''])
    seen = []
    hook = model.transformer.register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
    with torch.no_grad():
        fast = encode_text_tokens(model, tokens)
        hook.remove()
        reference = model.encode_text(tokens)
    assert seen == [int(tokens.argmax(-1).max()) + 1] and seen[0] < 77  # truncated: exact anyway
    assert fast.shape == (4, 32)
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)


def test_encode_text_tokens_falls_back_to_encode_text():
    class TextOnly(torch.nn.Module):  # e.g. a CustomTextCLIP: no token_embedding & co.
        def encode_text(self, tokens):
            return tokens.float() * 2

    tokens = torch.tensor([[49406, 7, 49407, 0]])
    assert torch.equal(encode_text_tokens(TextOnly(), tokens), tokens.float() * 2)


# --- TextEmbedder ------------------------------------------------------------------------------

def test_embedder_shapes_and_normalisation(model, tokenizer):
    embed = TextEmbedder(model, tokenizer, model_id='tiny', cache_dir=False)
    assert len(embed.templates) == 80
    vocab = embed(['cat', 'tv; monitor', ' traffic light '])
    assert vocab.class_names == ['cat', 'tv; monitor', 'traffic light']
    assert vocab.queries == ['cat', 'tv', 'monitor', 'traffic light']
    assert vocab.query_to_class.tolist() == [0, 1, 1, 2]
    assert vocab.embeddings.shape == (4, 32) and vocab.embeddings.dtype == torch.float32
    torch.testing.assert_close(vocab.embeddings.norm(dim=-1), torch.ones(4))
    assert vocab.pool_synonyms(torch.rand(2, 4, 3, 3)).shape == (2, 3, 3, 3)


def test_template_average_matches_formula(model, tokenizer):
    embed = TextEmbedder(model, tokenizer, model_id='tiny', templates=TWO_TEMPLATES,
                         cache_dir=False, batch_size=3)  # odd batches: sorting must be undone
    vocab = embed(['cat', 'traffic light; stoplight', 'dog'])
    for i, query in enumerate(vocab.queries):
        expected = reference_embedding(model, tokenizer, query, TWO_TEMPLATES)
        torch.testing.assert_close(vocab.embeddings[i], expected, atol=1e-5, rtol=1e-5)
    alone = embed(['stoplight']).embeddings[0]
    assert torch.equal(alone, vocab.embeddings[2])  # a synonym embeds as the class on its own


def test_memory_cache_skips_the_encoder(model, tokenizer, count_encoder):
    embed = TextEmbedder(model, tokenizer, model_id='tiny', templates=TWO_TEMPLATES,
                         cache_dir=False)
    first = embed(['cat', 'dog'])
    assert sum(count_encoder) == 4
    again = embed(['dog', 'cat'])
    assert sum(count_encoder) == 4
    assert torch.equal(again.embeddings, first.embeddings.flip(0))
    embed(['cat', 'bird'])
    assert sum(count_encoder) == 6  # only the new query


def test_disk_cache_is_reused_by_a_new_instance(model, tokenizer, tmp_path, count_encoder):
    kwargs = dict(model_id='tiny/random', templates=TWO_TEMPLATES, cache_dir=tmp_path)
    first = TextEmbedder(model, tokenizer, **kwargs)(['cat', 'tv; monitor'])
    [path] = tmp_path.iterdir()
    assert path == TextEmbedder(model, tokenizer, **kwargs).cache_file
    assert path.name.startswith('tiny_random-')
    stored = torch.load(path, weights_only=True)
    assert sorted(stored) == ['cat', 'monitor', 'tv']
    calls = sum(count_encoder)
    second = TextEmbedder(model, tokenizer, **kwargs)(['tv; monitor', 'cat'])
    assert sum(count_encoder) == calls
    assert torch.equal(second.embeddings, first.embeddings[[1, 2, 0]])
    TextEmbedder(model, tokenizer, **kwargs)(['dog'])  # merged into the same file
    assert sorted(torch.load(path, weights_only=True)) == ['cat', 'dog', 'monitor', 'tv']
    assert not list(tmp_path.glob('*.tmp'))


def test_disk_cache_is_keyed_by_weights_and_templates(model, tokenizer, tmp_path, count_encoder):
    kwargs = dict(model_id='tiny', templates=TWO_TEMPLATES, cache_dir=tmp_path)
    embed = TextEmbedder(model, tokenizer, **kwargs)
    before = embed(['cat']).embeddings
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.ln_final.bias.add_(0.5)
    changed_embed = TextEmbedder(changed, tokenizer, **kwargs)
    assert changed_embed.fingerprint != embed.fingerprint
    calls = sum(count_encoder)
    after = changed_embed(['cat']).embeddings
    assert sum(count_encoder) == calls + 2 and not torch.allclose(after, before)
    with torch.no_grad():
        changed.visual.proj.add_(1.0)  # the image tower is not part of the key
    assert TextEmbedder(changed, tokenizer, **kwargs).fingerprint == changed_embed.fingerprint
    single = TextEmbedder(model, tokenizer, model_id='tiny', templates='single',
                          cache_dir=tmp_path)
    assert single.cache_file != embed.cache_file
    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize('corrupt', [
    lambda path: path.write_bytes(b'not a torch file'),
    lambda path: torch.save({'cat': torch.full((32,), float('nan'))}, path),
    lambda path: torch.save({'cat': torch.ones(5)}, path),
    lambda path: torch.save([1, 2], path),
])
def test_corrupt_cache_is_rebuilt_with_a_warning(model, tokenizer, tmp_path, caplog,
                                                 count_encoder, corrupt):
    kwargs = dict(model_id='tiny', templates=TWO_TEMPLATES, cache_dir=tmp_path)
    expected = TextEmbedder(model, tokenizer, **kwargs)(['cat']).embeddings
    path = TextEmbedder(model, tokenizer, **kwargs).cache_file
    corrupt(path)
    calls = sum(count_encoder)
    with caplog.at_level(logging.WARNING):
        vocab = TextEmbedder(model, tokenizer, **kwargs)(['cat'])
    assert str(path) in caplog.text and 'rebuilt' in caplog.text
    assert sum(count_encoder) == calls + 2
    assert torch.equal(vocab.embeddings, expected)
    assert torch.equal(torch.load(path, weights_only=True)['cat'], expected[0])


def test_cache_dir_default_and_disabled(model, tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv('DENSEVL_CACHE', str(tmp_path))
    embed = TextEmbedder(model, tokenizer, model_id='tiny', templates='single')
    assert embed.cache_dir == tmp_path / 'text'
    TextEmbedder(model, tokenizer, model_id='tiny', templates='single', cache_dir=False)(['cat'])
    assert not (tmp_path / 'text').exists()
    embed(['cat'])
    assert len(list((tmp_path / 'text').iterdir())) == 1


def test_too_long_name_warns_and_is_truncated(model, tokenizer):
    embed = TextEmbedder(model, tokenizer, model_id='tiny', templates='single', cache_dir=False)
    long_name = ' '.join(['enormous'] * 80) + ' dog'
    with pytest.warns(UserWarning, match=r"class name 'enormous .* is too long.*holds 77"):
        vocab = embed(['cat', long_name])
    assert vocab.embeddings.shape == (2, 32)
    assert torch.isfinite(vocab.embeddings).all()


def test_embedder_rejects_bad_input(model, tokenizer):
    embed = TextEmbedder(model, tokenizer, model_id='tiny', templates='single', cache_dir=False)
    with pytest.raises(ValueError, match='vocabulary is empty'):
        embed([])
    with pytest.raises(ValueError, match='duplicates'):
        embed(['cat', 'CAT'])
    with pytest.raises(TypeError, match='single string'):
        embed('cat')
    with pytest.raises(ValueError, match='unknown templates'):
        TextEmbedder(model, tokenizer, model_id='tiny', templates='imagenet81')
    with pytest.raises(ValueError, match='model_id'):
        TextEmbedder(model, tokenizer, model_id='')
