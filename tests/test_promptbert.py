"""PromptBERT on a tiny random BERT: [MASK] placement, denoising, template contrast, MLM top-k, static tokens."""

from __future__ import annotations

import copy

import pytest
import torch

from contrastive_tutorial import losses as L
from contrastive_tutorial.methods import promptbert as pb

TEMPLATE = 'This sentence : "[X]" means [MASK] .'
SENTENCES = ["A cat sits on the mat.", "Stocks fell sharply today in early trading on the exchange.", "Hi", "Rain."]


@pytest.fixture
def prompt(tiny_encoder_parts):
    tokenizer, model = tiny_encoder_parts
    torch.manual_seed(1)
    return pb.PromptEncoder(copy.deepcopy(model), tokenizer, TEMPLATE, max_length=8)


def manual_ids(tokenizer, sentence, max_length, template=TEMPLATE):
    """[CLS] + prefix + sentence tokens (truncated) + suffix + [SEP], built from strings."""
    before, after = template.split("[X]")
    enc = lambda s: tokenizer(s.replace("[MASK]", tokenizer.mask_token).strip(), add_special_tokens=False)["input_ids"]  # noqa: E731
    return [tokenizer.cls_token_id, *enc(before), *enc(sentence)[:max_length], *enc(after), tokenizer.sep_token_id]


# ----------------------------------------------------------------- templates and tokens
def test_template_parse_and_errors(tiny_encoder_parts):
    tokenizer, _ = tiny_encoder_parts
    t = pb.Template.parse(TEMPLATE, tokenizer)
    assert tokenizer.convert_ids_to_tokens(list(t.prefix)) == ["this", "sentence", ":", '"']
    assert tokenizer.convert_ids_to_tokens(list(t.suffix)) == ['"', "means", "[MASK]", "."]
    with pytest.raises(ValueError, match="sentence slot"):
        pb.Template.parse("no slot [MASK]", tokenizer)
    with pytest.raises(ValueError, match="exactly once"):
        pb.Template.parse("[X] [MASK] [MASK]", tokenizer)


def test_with_template_recomputes_the_default_evaluation_length(prompt):
    """A longer template leaves fewer positions: the default eval_max_length follows it, a given one carries over."""
    longer = prompt.with_template('[X] . In one word , it means [MASK] , and nothing else .')
    assert longer.eval_max_length == prompt.eval_max_length - (len(longer.template.prefix) + len(longer.template.suffix)
                                                               - len(prompt.template.prefix) - len(prompt.template.suffix))
    longer.eval()(SENTENCES)  # encodes
    fixed = pb.PromptEncoder(prompt.model, prompt.tokenizer, TEMPLATE, max_length=8, eval_max_length=16)
    assert fixed.with_template("[X] means [MASK]").eval_max_length == 16


@pytest.mark.parametrize("template", [TEMPLATE, "[MASK] is what [X] means", "[X] means [MASK]"])
def test_mask_position_is_right_for_any_length_and_truncation(prompt, template):
    p = prompt.with_template(template)
    batch = p.tokenize(SENTENCES)
    for i, sentence in enumerate(SENTENCES):
        expected = manual_ids(p.tokenizer, sentence, 8, template)
        row = batch["input_ids"][i, : len(expected)].tolist()
        assert row == expected
        assert batch["attention_mask"][i].sum() == len(expected)
        assert batch["input_ids"][i, batch["mask_position"][i]] == p.tokenizer.mask_token_id
    assert batch["sentence_length"][1] == 8  # the long sentence was truncated, its [MASK] kept


def test_forward_is_the_mask_hidden_state(prompt):
    prompt.eval()
    vectors = prompt(SENTENCES)
    for i, sentence in enumerate(SENTENCES):
        ids = torch.tensor([manual_ids(prompt.tokenizer, sentence, 8)])
        hidden = prompt.model(input_ids=ids).last_hidden_state[0]
        where = ids[0].tolist().index(prompt.tokenizer.mask_token_id)
        torch.testing.assert_close(vectors[i], hidden[where], atol=1e-5, rtol=1e-5)


def test_denoising_subtracts_the_template_alone_with_shifted_positions(prompt):
    denoised = prompt.with_template(TEMPLATE, denoise=True)
    denoised.eval()
    raw = prompt.with_template(TEMPLATE).eval()(SENTENCES)
    out = denoised(SENTENCES)
    tok, t = prompt.tokenizer, denoised.template
    for i, sentence in enumerate(SENTENCES):
        n = min(len(tok(sentence, add_special_tokens=False)["input_ids"]), 8)
        ids = [tok.cls_token_id, *t.prefix, *t.suffix, tok.sep_token_id]
        positions = [p if p <= len(t.prefix) else p + n for p in range(len(ids))]
        # the official code's way: the template alone with shifted position ids. The all-ones mask matters:
        # without one, transformers 5.25 reads a jump in position ids as the start of another packed
        # sequence and changes the attention (template_bias holds the places with masked filler instead)
        hidden = prompt.model(input_ids=torch.tensor([ids]), position_ids=torch.tensor([positions]),
                              attention_mask=torch.ones(1, len(ids), dtype=torch.long)).last_hidden_state[0]
        bias = hidden[ids.index(tok.mask_token_id)]
        torch.testing.assert_close(out[i], raw[i] - bias, atol=1e-5, rtol=1e-5)
    lengths = torch.tensor([1, 5])
    bias = denoised.template_bias(lengths)
    assert not torch.allclose(bias[0], bias[1])  # the shift matters


def test_mlp_is_used_in_training_only(prompt):
    torch.manual_seed(0)
    prompt.model.eval()  # no dropout
    plain = prompt.eval()(SENTENCES)
    prompt.train()
    prompt.model.eval()
    torch.testing.assert_close(prompt(SENTENCES), prompt.mlp(plain))


def test_encode_keeps_input_order(prompt):
    prompt.eval()
    ended = [pb.end_with_period(s) for s in SENTENCES]  # what the evaluation entry points encode ("Hi" -> "Hi.")
    whole = prompt.eval_max_length  # and whole sentences: evaluation does not truncate at the training length
    torch.testing.assert_close(prompt.encode(SENTENCES, batch_size=3), prompt(ended, whole), atol=1e-5, rtol=1e-5)
    both = prompt.encode_variants(SENTENCES, batch_size=3)
    torch.testing.assert_close(both["raw"], prompt(ended, whole), atol=1e-5, rtol=1e-5)
    denoised = prompt.with_template(TEMPLATE, denoise=True)(ended, whole)
    torch.testing.assert_close(both["denoised"], denoised, atol=1e-5, rtol=1e-5)
    assert prompt.eval_max_length > prompt.max_length
    with pytest.raises(ValueError, match="eval_max_length must lie in"):
        pb.PromptEncoder(prompt.model, prompt.tokenizer, TEMPLATE, eval_max_length=10**6)


# ----------------------------------------------------------------- template contrast
def test_template_contrast_is_simcse_loss_between_templates(prompt):
    prompt.eval()
    second = prompt.with_template("[X] means [MASK] .", denoise=True)
    first = prompt.with_template(TEMPLATE, denoise=True)
    loss = pb.template_contrast_loss(first, second, SENTENCES, temperature=0.05)
    torch.testing.assert_close(loss, L.simcse_loss(first(SENTENCES), second(SENTENCES), 0.05))
    other = pb.PromptEncoder(copy.deepcopy(prompt.model), prompt.tokenizer, TEMPLATE)
    with pytest.raises(ValueError, match="share one model"):
        pb.template_contrast_loss(first, other, SENTENCES)


def test_train_prompt_contrast_updates_the_model(prompt):
    before = copy.deepcopy(prompt.model.state_dict())
    history = pb.train_prompt_contrast(prompt, "[X] means [MASK] .", SENTENCES * 4, batch_size=4, lr=1e-3, max_steps=2, progress=False)
    assert len(history) == 1 and torch.isfinite(torch.tensor(history[0]["loss"]))
    assert any(not torch.equal(before[k], v) for k, v in prompt.model.state_dict().items())
    assert prompt.denoise is False  # evaluation keeps the encoder's own setting


# ----------------------------------------------------------------- MLM top-k and loading
def test_mlm_topk_matches_its_definition(tiny_mlm_parts):
    tokenizer, mlm = tiny_mlm_parts
    p = pb.PromptEncoder(mlm, tokenizer, TEMPLATE).eval()  # no dropout in the reference pass below
    rep = pb.mlm_topk_representation(p, SENTENCES, k=3)
    batch = p.tokenize([pb.end_with_period(s) for s in SENTENCES])  # as the evaluation sees them
    logits = mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    for i in range(len(SENTENCES)):
        probs = logits[i, batch["mask_position"][i]].softmax(-1)
        top = probs.topk(3)
        w = mlm.get_input_embeddings().weight
        expected = sum(top.values[j] * w[top.indices[j]] for j in range(3)) / top.values.sum()
        torch.testing.assert_close(rep[i], expected.detach(), atol=1e-5, rtol=1e-5)


def test_mlm_topk_refuses_a_model_without_head(prompt):
    with pytest.raises(ValueError, match="no MLM head"):
        pb.mlm_topk_representation(prompt, SENTENCES)


def test_load_mlm_accepts_a_head_and_refuses_an_encoder_only_model(tiny_mlm_parts, tiny_encoder_parts, tmp_path):
    tokenizer, mlm = tiny_mlm_parts
    mlm.save_pretrained(tmp_path / "mlm")
    tokenizer.save_pretrained(tmp_path / "mlm")
    _, loaded = pb.load_mlm(str(tmp_path / "mlm"))
    torch.testing.assert_close(loaded.get_output_embeddings().weight, mlm.get_output_embeddings().weight)
    _, encoder_only = tiny_encoder_parts
    encoder_only.save_pretrained(tmp_path / "enc")
    tokenizer.save_pretrained(tmp_path / "enc")
    with pytest.raises(ValueError, match="no pretrained MLM head"):
        pb.load_mlm(str(tmp_path / "enc"))


# ----------------------------------------------------------------- static token embeddings
def test_static_token_average_drops_the_biased_tokens(tiny_encoder_parts):
    tokenizer, model = tiny_encoder_parts
    table = model.get_input_embeddings().weight.detach()
    sentence = "Unbelievably, cats sleep."
    ids = tokenizer(sentence, add_special_tokens=False)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert any(t.startswith("##") for t in tokens) and "," in tokens
    full = pb.static_token_average(model, tokenizer, [sentence])
    torch.testing.assert_close(full[0], table[ids].mean(0))
    kept = [i for i, t in zip(ids, tokens) if not t.startswith("##") and t not in {",", "."}]
    clean = pb.static_token_average(model, tokenizer, [sentence], drop=("subword", "punctuation"))
    torch.testing.assert_close(clean[0], table[kept].mean(0))
    frequent = {ids[0]}
    no_frequent = pb.static_token_average(model, tokenizer, [sentence], drop=("frequent",), frequent=frequent)
    torch.testing.assert_close(no_frequent[0], table[ids[1:]].mean(0))
    only_punct = pb.static_token_average(model, tokenizer, ["..."], drop=("punctuation",))
    assert torch.isfinite(only_punct).all()  # nothing left: all tokens kept rather than 0/0
    with pytest.raises(ValueError, match="drop must be"):
        pb.static_token_average(model, tokenizer, [sentence], drop=("stopwords",))
    with pytest.raises(ValueError, match="frequent token ids"):
        pb.static_token_average(model, tokenizer, [sentence], drop=("frequent",))


def test_token_frequencies_count_tokens(tiny_encoder_parts):
    tokenizer, _ = tiny_encoder_parts
    counts = pb.token_frequencies(tokenizer, ["the cat", "the dog"])
    assert counts[tokenizer.convert_tokens_to_ids("the")] == 2


def test_end_with_period_follows_the_official_evaluation():
    assert pb.end_with_period("A man plays") == "A man plays."
    for done in ("Done.", "Really?", 'He said "no"', "it's 'fine'", ""):
        assert pb.end_with_period(done) == done
    assert pb.end_with_period("Wow!") == "Wow!."  # only . ? " ' count as an end, as in kongds/Prompt-BERT


def test_prompt_encoder_adds_the_period_at_evaluation_only(prompt, monkeypatch):
    seen = []
    original = pb.PromptEncoder.tokenize

    def recording(self, sentences, max_length=None):
        seen.append(sorted(sentences))
        return original(self, sentences, max_length)

    monkeypatch.setattr(pb.PromptEncoder, "tokenize", recording)
    prompt.encode(["a cat sat", "done."])
    assert seen[-1] == ["a cat sat.", "done."]
    prompt.encode_variants(["a cat sat"])
    assert seen[-1] == ["a cat sat."]
    prompt.with_template(TEMPLATE, end_period=False).encode(["a cat sat"])
    assert seen[-1] == ["a cat sat"]
    prompt.train()
    prompt(["a cat sat"])  # training takes the sentences as given
    assert seen[-1] == ["a cat sat"]


def test_denoising_holds_the_sentence_places_for_rotary_positions(minilm_tokenizer):
    """RoFormer takes no position ids: the template alone must still see the sentence's length.

    Independent check: the template's [MASK] state with a sentence of random tokens in the slot
    that attention is told to ignore. Without the held places (the template packed together)
    every length would give one and the same vector; the book's raw encoder is a RoFormer."""
    from transformers import RoFormerConfig, RoFormerModel

    torch.manual_seed(0)
    config = RoFormerConfig(vocab_size=minilm_tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                            embedding_size=16, initializer_range=1.0)  # large weights: attention that reads positions
    p = pb.PromptEncoder(RoFormerModel(config).eval(), minilm_tokenizer, TEMPLATE, max_length=8, denoise=True)
    t, tok = p.template, minilm_tokenizer
    lengths = torch.tensor([5, 1, 5, 12])
    with torch.no_grad():
        bias = p.template_bias(lengths)
        for i, n in enumerate(lengths.tolist()):
            sentence = torch.randint(1000, 2000, (n,)).tolist()
            ids = torch.tensor([[tok.cls_token_id, *t.prefix, *sentence, *t.suffix, tok.sep_token_id]])
            attention = torch.ones_like(ids)
            attention[0, 1 + len(t.prefix): 1 + len(t.prefix) + n] = 0
            hidden = p.encoder(input_ids=ids, attention_mask=attention).last_hidden_state[0]
            torch.testing.assert_close(bias[i], hidden[t.mask_offset(n)], atol=1e-5, rtol=1e-5)
        packed = torch.tensor([[tok.cls_token_id, *t.prefix, *t.suffix, tok.sep_token_id]])
        unshifted = p.encoder(input_ids=packed).last_hidden_state[0, t.mask_offset(0)]
    assert (bias[0] - bias[1]).norm() > 5e-3 * bias[0].norm()  # the length matters (float noise: 1e-6)
    assert (bias[3] - unshifted).norm() > 5e-3 * unshifted.norm()
