"""Sampling speed: Cantor's streaming sampler on its traced step, against the eager step, a
full recompute and Hugging Face.

    python -m bench.sampling [--quick]
    python -m bench.sampling --variations      # only the variations rows

For the shipped small word model and a random 13M (large) one, at 256 and 1024 new words with 1
and 2 threads, prints words/s of:
- Cantor: ``models.sampling.stream`` with the KV cache and the grammar mask (the studio's path),
  each step the traced ``GPT.step`` and choice (models/decoding.py);
- eager (the baseline): the same sampler stepping through ``GPT.step`` in eager PyTorch, the
  fallback (``CANTOR_EAGER=1``); "same words" says whether both wrote the same words for the seed;
- full recompute: nanoGPT's generate() over the same weights (the whole window every word);
- transformers: GPT2LMHeadModel.generate(use_cache=True) with the same configuration and weights.
  It cannot slide its window, so it is given as many positions as it writes. GPT-2 has learned
  positions only, so a rotary model (the shipped one) has no transformers figure.
Each figure is the median of three runs, the paths taking turns, so that a noisy machine slows
them alike.

Then the variations rows: N = 1, 4 and 8 pieces of 256 words from the shipped model, with the
four-part rules (the studio's path), written in one batch (``models.sampling.stream_rows``) and
one after another, 1 thread: words/s in all, and the batch's time against one piece's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from models.decoding import stepping_eagerly
from models.gpt import GPT, SIZES, GPTConfig
from models.sampling import SamplingSettings, stream, stream_rows
from models.word_model import WordModel
from tokenizer.constraints import RuleConstraint, Rules
from tokenizer.dataset import WordDataset
from tokenizer.words import word_grammar

SHIPPED = Path("checkpoints/chorales_small")


@torch.inference_mode()
def full_recompute(model: GPT, count: int, generator: torch.Generator) -> None:
    idx = torch.zeros((1, 1), dtype=torch.long)
    for _ in range(count):
        logits, _ = model(idx[:, -model.config.block_size :])
        probs = torch.softmax(logits[:, -1, :], dim=-1)
        idx = torch.cat((idx, torch.multinomial(probs, 1, generator=generator)), dim=1)


def as_gpt2(model: GPT, positions: int):
    """A transformers GPT2LMHeadModel with the same weights (and more position rows if needed)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.config
    hf = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=c.vocab_size,
            n_positions=positions,
            n_embd=c.n_embd,
            n_layer=c.n_layer,
            n_head=c.n_head,
            bos_token_id=0,
            eos_token_id=1,
        )
    ).eval()
    ours = model.state_dict()
    with torch.no_grad():
        hf.transformer.wte.weight.copy_(ours["transformer.wte.weight"])
        hf.transformer.wpe.weight[: c.block_size].copy_(ours["transformer.wpe.weight"])
        for i in range(c.n_layer):
            for name in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
                target = hf.transformer.h[i].get_submodule(name)
                target.weight.copy_(ours[f"transformer.h.{i}.{name}.weight"].T)  # Conv1D is transposed
                target.bias.copy_(ours[f"transformer.h.{i}.{name}.bias"])
            for name in ("ln_1", "ln_2"):
                hf.transformer.h[i].get_submodule(name).load_state_dict(
                    {k: ours[f"transformer.h.{i}.{name}.{k}"] for k in ("weight", "bias")}
                )
        hf.transformer.ln_f.load_state_dict({k: ours[f"transformer.ln_f.{k}"] for k in ("weight", "bias")})
    return hf


def cantor(model: GPT, vocab, count: int, eager: bool = False) -> list[int]:
    """``count`` words from the sampler, on the traced step or (``eager``) the eager one."""
    grammar = word_grammar(vocab)
    grammar.advance(vocab.start_id)
    settings = SamplingSettings(seed=1)
    with stepping_eagerly(eager):
        return list(
            stream(
                model,
                [vocab.start_id],
                count,
                settings,
                constraint=grammar,
                end_id=vocab.end_id,
                restart_id=vocab.start_id,  # as the studio: a new piece after END
            )
        )


def timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def ruled(vocab) -> RuleConstraint:
    grammar = word_grammar(vocab)
    grammar.advance(vocab.start_id)
    return RuleConstraint(grammar, Rules())


def variations(model: GPT, vocab, rows: int, count: int, batched: bool) -> None:
    """``rows`` pieces of ``count`` words with the four-part rules: in one batch, or one by one."""
    ends = dict(end_id=vocab.end_id, restart_id=vocab.start_id)
    if batched:
        for _ in stream_rows(
            model, [vocab.start_id], count, SamplingSettings(seed=1), [ruled(vocab) for _ in range(rows)], **ends
        ):
            pass
        return
    for row in range(rows):
        for _ in stream(
            model, [vocab.start_id], count, SamplingSettings(seed=1 + row), constraint=ruled(vocab), **ends
        ):
            pass


def variation_rows(model: GPT, vocab, count: int = 256) -> None:
    torch.set_num_threads(1)
    variations(model, vocab, 2, 16, True)  # warm up
    print(f"\nvariations, {count} words each, four-part rules, 1 thread")
    print("{:>3} {:>14} {:>18} {:>8} {:>16}".format("N", "batch w/s", "one by one w/s", "ratio", "batch / one piece"))
    one = None
    for rows in (1, 4, 8):
        times = {True: [], False: []}
        for batched in (True, False, True):  # the batch twice, its faster run counted
            times[batched].append(timed(lambda b=batched, r=rows: variations(model, vocab, r, count, b))[0])
        times = {batched: min(runs) for batched, runs in times.items()}
        one = one or times[True]
        print(
            f"{rows:3d} {rows * count / times[True]:14.0f} {rows * count / times[False]:18.0f} "
            f"{times[False] / times[True]:7.2f}x {times[True] / one:15.2f}x"
        )


def transformers_generate(hf, count: int) -> None:
    with torch.inference_mode():
        hf.generate(
            torch.zeros((1, 1), dtype=torch.long),
            attention_mask=torch.ones((1, 1), dtype=torch.long),
            max_new_tokens=count,
            min_new_tokens=count,
            do_sample=True,
            use_cache=True,
            pad_token_id=0,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="256 words and 1 thread only")
    parser.add_argument("--variations", action="store_true", help="only the variations rows")
    args = parser.parse_args()
    vocab = WordDataset("data/chorales").vocab
    models = {}
    if SHIPPED.with_suffix(".json").exists():
        shipped = WordModel(SHIPPED)
        models["shipped small"], vocab = shipped.model, shipped.vocab  # its vocabulary may add marker words
    if args.variations:
        variation_rows(models["shipped small"], vocab)
        return
    torch.manual_seed(0)
    models["random 13M (large)"] = GPT(GPTConfig(vocab_size=vocab.size, dropout=0.0, **SIZES["large"])).eval()
    counts = [256] if args.quick else [256, 1024]
    threads_list = [1] if args.quick else [1, 2]
    header = ("model", "thr", "words", "Cantor w/s", "eager", "ratio", "same words", "recompute", "ratio", "HF w/s")
    print("{:20} {:>3} {:>5} {:>10} {:>7} {:>6} {:>10} {:>9} {:>6} {:>8}".format(*header))
    for name, model in models.items():
        for count in counts:
            learned = model.config.positions == "learned"
            hf = as_gpt2(model, max(model.config.block_size, count + 1)) if learned else None
            for threads in threads_list:
                torch.set_num_threads(threads)
                cantor(model, vocab, 16)  # warm up: the trace is made
                times: dict[str, list[float]] = {"fast": [], "eager": [], "full": []}
                for _ in range(3):  # in turn
                    seconds, fast_words = timed(lambda m=model, n=count: cantor(m, vocab, n))
                    times["fast"].append(seconds)
                    seconds, eager_words = timed(lambda m=model, n=count: cantor(m, vocab, n, eager=True))
                    times["eager"].append(seconds)
                    recompute = (model, count, torch.Generator().manual_seed(1))
                    times["full"].append(timed(lambda args=recompute: full_recompute(*args))[0])
                ours, eager, full = (count / float(np.median(times[k])) for k in ("fast", "eager", "full"))
                theirs = "–"
                if hf is not None:
                    transformers_generate(hf, 16)
                    hf_ws = count / timed(lambda h=hf, n=count: transformers_generate(h, n))[0]
                    theirs = f"{hf_ws:8.0f} {ours / hf_ws:5.2f}x"
                same = "yes" if fast_words == eager_words else "NO"
                print(
                    f"{name:20} {threads:3d} {count:5d} {ours:10.0f} {eager:7.0f} {ours / eager:5.2f}x {same:>10} "
                    f"{full:9.0f} {ours / full:5.1f}x {theirs}"
                )
    if "shipped small" in models and not args.quick:
        variation_rows(models["shipped small"], vocab)


if __name__ == "__main__":
    main()
