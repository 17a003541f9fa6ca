"""The GPT's KV cache and the streaming sampler."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch

from models import decoding
from models.choice import Choice, draw, filter_logits
from models.decoding import Decoder
from models.gpt import GPT, SIZES, GPTConfig, rotation
from models.sampling import SamplingSettings, generate, stream, stream_rows
from models.word_model import WordModel
from tokenizer import CantorError
from tokenizer.words import decode, word_grammar


@pytest.fixture
def model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50, block_size=32, dropout=0.0, **SIZES["tiny"])).eval()


@pytest.fixture(params=["traced", "eager"])
def step_path(request, monkeypatch) -> str:
    """Each decoding test runs on the traced step and on the eager fallback."""
    monkeypatch.setenv("CANTOR_EAGER", "1" if request.param == "eager" else "0")
    return request.param


def decoder_of(model: GPT, path: str, rows: int = 1) -> Decoder:
    decoder = Decoder(model, rows)
    assert decoder.prefill(torch.zeros((rows, 1), dtype=torch.long)) is not None
    decoder.step(torch.zeros((rows, 1), dtype=torch.long))  # the step path is chosen at the first step
    assert (decoder.fast is not None) == (path == "traced")
    return decoder


def test_cached_logits_match_full_forward_step_by_step_and_in_chunks(model, step_path):
    ids = torch.randint(0, 50, (1, 32))
    with torch.no_grad():
        full, _ = model(ids)
        decoder = decoder_of(model, step_path)
        parts = [decoder.prefill(ids[:, :10])[:, None]]
        parts += [decoder.step(ids[:, t : t + 1])[0][:, None] for t in range(10, 20)]  # one at a time
        parts.append(model(ids[:, 20:32], cache=decoder.cache)[0])  # a chunk after the cache: explicit mask
    assert torch.allclose(torch.cat(parts, dim=1), full[:, 9:], atol=1e-5)


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_stream_with_full_context_equals_full_recompute_past_the_block_size(positions):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=32, dropout=0.0, positions=positions, **SIZES["tiny"])).eval()
    settings = SamplingSettings(top_k=1)  # greedy, so the two must agree exactly
    prompt = [1, 2, 3]
    made = generate(model, prompt, 100, settings, window_shift=1)  # 3 x the block size
    context = list(prompt)
    with torch.no_grad():
        for expected in made:
            view = context if positions == "rope" else context[-32:]  # sliding window / last block
            logits, _ = model(torch.tensor([view]))
            assert int(logits[0, -1].argmax()) == expected
            context.append(expected)


@pytest.fixture
def learned_model() -> GPT:
    """The first checkpoints' kind: learned absolute positions, which cannot roll."""
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50, block_size=32, dropout=0.0, positions="learned", **SIZES["tiny"])).eval()


def test_rolling_cache_equals_sliding_window_attention_over_the_whole_sequence_at_every_step(model, step_path):
    ids = torch.randint(0, 50, (1, 150))
    with torch.no_grad():
        whole = model(ids)[0][0]  # one forward, a banded mask of width 32 at every layer
        decoder = decoder_of(model, step_path)
        cached = [decoder.prefill(ids[:, :20])[0]]
        cached += [decoder.step(ids[:, t : t + 1])[0][0] for t in range(20, 150)]
    assert torch.allclose(torch.stack(cached), whole[19:], atol=1e-4)
    assert decoder.cache.length == 32 and decoder.cache.position == 150


@pytest.mark.parametrize("start, count", [(0, 1), (191, 1), (1023, 2), (70_000, 3), (0, 600)])
def test_rotary_angles_from_the_table_are_the_angles_of_their_positions(start, count):
    """A sampler reads one position a step from a table made once; across a table's end and far
    past the block the angles are those of the positions asked for, computed in float64."""
    cos, sin = rotation(start, count, 32, torch.float32, torch.device("cpu"))
    inverse = 10000.0 ** (-torch.arange(16, dtype=torch.float64) / 16)
    angles = torch.arange(start, start + count, dtype=torch.float64)[:, None] * inverse[None, :]
    assert torch.equal(cos, angles.cos().float()) and torch.equal(sin, angles.sin().float())


def test_one_layer_rolling_cache_is_exactly_a_recompute_of_the_last_block(step_path):
    """With one layer nothing below sees further back: the window is all the model knows."""
    torch.manual_seed(1)
    one = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.0)).eval()
    ids = torch.randint(0, 50, (1, 60))
    with torch.no_grad():
        decoder = decoder_of(one, step_path)
        decoder.prefill(ids[:, :16])
        for t in range(16, 60):
            rolled = decoder.step(ids[:, t : t + 1])[0][0]
            assert torch.allclose(rolled, one(ids[:, t - 15 : t + 1])[0][0, -1], atol=1e-4), t


def test_rotary_stream_keeps_the_whole_block_in_view_and_learned_one_re_prefills(model, learned_model):
    rotary, learned = [], []
    generate(model, [1], 200, SamplingSettings(seed=3), on_context=rotary.append)
    generate(learned_model, [1], 200, SamplingSettings(seed=3), on_context=learned.append)
    assert rotary[:5] == [1, 2, 3, 4, 5] and rotary[40:] == [32] * 160
    assert max(learned) == 32 and min(learned[40:]) >= 32 - 8 + 1  # the default shift, a quarter


def test_learned_positions_refuse_to_roll_a_full_cache(learned_model):
    with torch.no_grad():
        decoder = Decoder(learned_model, 1)
        decoder.prefill(torch.randint(0, 50, (1, 32)))
        with pytest.raises(ValueError, match="rotary"):
            decoder.step(torch.tensor([[1]]))
        with pytest.raises(ValueError, match="exceed the block"):
            learned_model(torch.tensor([[1]]), cache=decoder.cache)


def test_the_traced_step_gives_the_eager_steps_ids_for_a_seed_and_a_failed_trace_falls_back(model, monkeypatch, caplog):
    """The fast path is a trace of GPT.step; where it cannot be built the sampler steps eagerly,
    after one line in the log, and writes the same ids."""
    monkeypatch.setenv("CANTOR_EAGER", "0")
    traced = generate(model, [1], 120, SamplingSettings(seed=4))  # past the block: the cache rolls
    assert decoding._traced[model] is not None

    def no_tracer(*args, **kwargs):
        raise RuntimeError("no TorchScript here")

    monkeypatch.setattr(torch.jit, "trace", no_tracer)
    decoding._traced.clear()
    with caplog.at_level(logging.WARNING, logger="models.decoding"):
        fallen_back = generate(model, [1], 120, SamplingSettings(seed=4))
        generate(model, [1], 10, SamplingSettings(seed=5))  # said once, not at every piece
    assert fallen_back == traced and decoding._traced[model] is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "no TorchScript here" in lines[0] and "eagerly" in lines[0]


def test_checkpoints_from_before_rotary_positions_load_with_learned_ones(learned_model, tmp_path):
    """A card written before rotary positions and phases names neither: it loads as learned."""
    import json

    from models.checkpoint import load_gpt, save_checkpoint

    info = {"kind": "prior", "model_config": learned_model.config.to_json()}
    path = save_checkpoint(tmp_path / "old", learned_model, info)
    card = json.loads(path.with_suffix(".json").read_text())
    del card["model_config"]["positions"], card["model_config"]["phase_period"]
    path.with_suffix(".json").write_text(json.dumps(card))
    model, _ = load_gpt(path, "prior")
    assert model.config.positions == "learned" and model.config.phase_period == 0
    assert "wpe" in dict(model.transformer.named_children())
    assert torch.equal(model.transformer.wpe.weight, learned_model.transformer.wpe.weight)


def test_same_seed_same_output_and_other_seed_differs(model):
    a = generate(model, [1], 64, SamplingSettings(temperature=1.0, seed=7))
    b = generate(model, [1], 64, SamplingSettings(temperature=1.0, seed=7))
    c = generate(model, [1], 64, SamplingSettings(temperature=1.0, seed=8))
    assert a == b and a != c


def kept_by(logits: torch.Tensor, top_k: int = 4, top_p: float = 1.0) -> list[bool]:
    return torch.isfinite(filter_logits(logits, torch.tensor(1.0), torch.tensor([top_k]), torch.tensor(top_p))).tolist()


def test_top_k_and_top_p_keep_only_the_likeliest_ids():
    logits = torch.tensor([1.0, 3.0, 2.0, 0.0])
    assert kept_by(logits, top_k=2) == [False, True, True, False]
    assert kept_by(logits, top_p=0.5) == [False, True, False, False]  # the top id alone holds more than half
    assert kept_by(logits, top_p=0.85) == [False, True, True, False]  # 0.64 + 0.24 >= 0.85
    assert kept_by(logits) == [True] * 4


def test_the_draw_is_multinomials_for_the_same_generator():
    """The noise is drawn before the step, so that the traced step can end with the choice; the ids
    are those torch.multinomial draws from the same probabilities and generator."""
    torch.manual_seed(0)
    for trial in range(200):
        logits = torch.randn(1, 135) * 3
        logits[0, torch.rand(135) < 0.5] = float("-inf")
        logits[0, 0] = 0.0
        ours, theirs = torch.Generator().manual_seed(trial), torch.Generator().manual_seed(trial)
        for _ in range(3):
            choice = Choice.greedy(1, 135, torch.device("cpu"))
            choice.noise = torch.empty(1, 135).exponential_(1, generator=ours)
            expected = torch.multinomial(torch.softmax(logits, dim=-1)[0], 1, generator=theirs)
            assert int(draw(logits, *choice.tensors())) == int(expected)


@pytest.mark.parametrize(
    "settings",
    [
        SamplingSettings(top_k=0),
        SamplingSettings(top_p=0.0),
        SamplingSettings(top_p=1.5),
        SamplingSettings(temperature=0),
    ],
)
def test_bad_settings_are_refused(model, settings):
    with pytest.raises(CantorError):
        generate(model, [1], 4, settings)


def test_a_word_count_below_one_is_refused(model):
    with pytest.raises(CantorError, match="at least 1"):
        generate(model, [1], 0, SamplingSettings())


def test_a_thousand_grammar_masked_samples_from_a_random_model_all_decode(tiny_word_checkpoint):
    word_model = WordModel(tiny_word_checkpoint)
    torch.set_num_threads(1)
    vocab = word_model.vocab
    ended = 0
    for seed in range(1000):
        words = list(word_model.stream_words(24, SamplingSettings(temperature=1.5, seed=seed)))
        piece = decode([vocab.start_id, *words], vocab, partial=True)
        if words[-1] == vocab.end_id:
            ended += 1
            assert decode([vocab.start_id, *words], vocab).notes == piece.notes
        assert all(n.duration >= 1 for n in piece.notes)
    assert ended >= 950  # steered to end within its 24 words (tokenizer/ending.py), even by a random model


def test_cancel_from_another_thread_keeps_the_words_made_so_far(model):
    cancel = threading.Event()
    words: list[int] = []

    def consume():
        for word in stream(model, [1], 10_000, SamplingSettings(seed=1), cancel=cancel):
            words.append(word)
            if len(words) == 25:
                threading.Thread(target=cancel.set).start()
                threading.Event().wait(0.05)

    worker = threading.Thread(target=consume)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert 25 <= len(words) < 10_000
    assert words == generate(model, [1], len(words), SamplingSettings(seed=1))


def test_end_stops_or_starts_a_new_piece_as_asked(model):
    settings = SamplingSettings(seed=4)
    free = generate(model, [1], 300, settings)
    end_id = free[10]  # an id the model makes early on, standing in for END
    first_end = free.index(end_id)
    stopped = generate(model, [1], 300, settings, end_id=end_id)
    assert stopped == free[: first_end + 1]
    going = generate(model, [1], 300, settings, end_id=end_id, restart_id=0)
    assert len(going) == 300 and going[: first_end + 1] == stopped
    assert all(going[i + 1] == 0 for i, word in enumerate(going[:-1]) if word == end_id)


def test_grammar_mask_is_applied_to_every_step(tiny_word_checkpoint):
    word_model = WordModel(tiny_word_checkpoint)
    grammar = word_grammar(word_model.vocab)
    grammar.advance(word_model.vocab.start_id)
    for word in word_model.stream_words(500, SamplingSettings(temperature=3.0, seed=5), stop_at_end=False):
        if word == word_model.vocab.start_id:
            grammar.reset()
        assert grammar.legal_mask()[word]
        grammar.advance(word)
    assert np.any(grammar.legal_mask())


def test_a_phase_model_streams_exactly_what_a_full_forward_with_the_same_phases_gives():
    """The sampler gives each id its phase (index - 1, modulo the period), before and after the
    cache rolls, and with a prompt longer than the block."""
    torch.manual_seed(2)
    model = GPT(GPTConfig(vocab_size=50, block_size=32, dropout=0.0, phase_period=4, **SIZES["tiny"])).eval()
    prompt = torch.randint(0, 50, (40,)).tolist()
    made = generate(model, prompt, 60, SamplingSettings(top_k=1))
    context = list(prompt)
    with torch.no_grad():
        for expected in made:
            view = context[len(prompt) - 31 :]  # the prompt is cut to the block; then the cache rolls
            phases = (torch.arange(len(prompt) - 31, len(context)) - 1) % 4
            logits, _ = model(torch.tensor([view]), phases=phases[None, :])
            assert int(logits[0, -1].argmax()) == expected
            context.append(expected)
    with pytest.raises(ValueError, match="phase"):
        model(torch.tensor([[1, 2]]))


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_each_row_of_a_batch_is_the_piece_its_seed_makes_alone(positions):
    """Variations run in one batch: row r draws with seed + r and sees only its own words, past
    the context too (rolled or re-prefilled), under its own grammar and rules."""
    from tokenizer.constraints import RuleConstraint, Rules
    from tokenizer.words import WordVocabulary

    vocab = WordVocabulary(encoding="steps")
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=vocab.size, block_size=48, dropout=0.0, positions=positions, **SIZES["tiny"])
    model = GPT(config).eval()

    def rules() -> RuleConstraint:
        grammar = word_grammar(vocab)
        grammar.advance(vocab.start_id)
        return RuleConstraint(grammar, Rules())

    ends = dict(end_id=vocab.end_id, restart_id=vocab.start_id)
    batch = list(
        stream_rows(model, [vocab.start_id], 150, SamplingSettings(seed=10), [rules() for _ in range(4)], **ends)
    )
    assert len(batch) == 150 and all(len(ids) == 4 for ids in batch)
    for row in range(4):
        alone = generate(model, [vocab.start_id], 150, SamplingSettings(seed=10 + row), constraint=rules(), **ends)
        assert [ids[row] for ids in batch] == alone
    assert len({tuple(ids[row] for ids in batch) for row in range(4)}) == 4  # four different pieces


def test_a_row_that_ends_yields_none_and_the_batch_goes_on_until_every_row_has_ended():
    from tokenizer.words import WordVocabulary

    vocab = WordVocabulary(encoding="steps")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab.size, block_size=48, dropout=0.0, **SIZES["tiny"])).eval()
    grammars = []
    for _ in range(3):
        grammars.append(word_grammar(vocab))
        grammars[-1].advance(vocab.start_id)
    batch = list(stream_rows(model, [vocab.start_id], 500, SamplingSettings(seed=1), grammars, end_id=vocab.end_id))
    for row in range(3):
        ids = [step[row] for step in batch]
        written = [i for i in ids if i is not None]
        assert written[-1] == vocab.end_id and ids[len(written) :] == [None] * (len(ids) - len(written))
    assert len(batch) == max(len([s[row] for s in batch if s[row] is not None]) for row in range(3))
    with pytest.raises(CantorError, match="variations must be from 1 to 8"):
        stream_rows(model, [vocab.start_id], 5, SamplingSettings(), [None] * 9)
