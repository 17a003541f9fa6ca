"""Evaluate a word model: nats per word and bits per note, beside n-gram baselines.

    python -m models.evaluate --checkpoint checkpoints/chorales_small --split test

Bits per note = the total NLL of a split's words (every word after each piece's START)
in bits, divided by its number of notes: comparable across tokenizers. A model with form words
(PHRASE, the key; tokenizer/words.py) is also scored on the notes' own words alone, with the
form words' bits counted apart, so that it compares with a model that has none. Long pieces are
scored with a sliding window moved ``--stride`` words at a time, so that each word sees at least
``block - stride`` words of context (or all of its piece before it).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.gpt import GPT
from models.ngram import KneserNeyTrigram, UnigramModel
from models.word_model import WordModel
from tokenizer.cli import HelpFormatter, whole
from tokenizer.dataset import WordDataset
from tokenizer.errors import CantorError
from tokenizer.keys import KEYS
from tokenizer.words import encode


@torch.inference_mode()
def word_nll(model: GPT, ids: np.ndarray, stride: int | None = None) -> np.ndarray:
    """The NLL (nats) of each of ids[1:] given what comes before, in windows of the block size
    moved ``stride`` words at a time (default: an eighth of the block)."""
    stride = stride or model.config.block_size // 8
    block = model.config.block_size
    tokens = torch.from_numpy(ids.astype(np.int64))
    parts, scored = [], 1  # positions < scored are already counted (or are the first word)
    start = 0
    while scored < len(ids):
        end = min(len(ids), start + block + 1)
        window = tokens[start:end]
        logits, _ = model(window[None, :-1])
        nll = F.cross_entropy(logits[0], window[1:], reduction="none")  # predicts positions start+1..end-1
        parts.append(nll[scored - start - 1 :].numpy())
        scored = end
        start = max(start, end - 1 - (block - stride))
    return np.concatenate(parts)


def evaluate(
    word_model: WordModel, dataset: WordDataset, split: str, stride: int | None = None
) -> dict[str, dict[str, float]]:
    """{model name: {"nats_per_word", "bits_per_note"}} on ``split``, every piece written in the
    model's own encoding (so that models of different encodings are scored on the same notes)."""
    word_model.check_grid(dataset)
    vocab = word_model.vocab

    def words_of(split: str) -> list[np.ndarray]:
        return [np.asarray(encode(dataset.piece(name), vocab), dtype=np.int64) for name in dataset.names(split)]

    pieces = words_of(split)
    if not pieces:
        raise CantorError(f"{dataset.folder.name}: the {split} split is empty")
    train = words_of("train")
    words = sum(len(p) - 1 for p in pieces)
    notes = sum(int(((p >= vocab.first_pitch_id) & (p < vocab.first_duration_id)).sum()) for p in pieces)
    model_total = form_total = 0.0
    for ids in pieces:
        nll = word_nll(word_model.model, ids, stride)
        model_total += float(nll.sum())
        if vocab.form:  # PHRASE and the key word, counted apart from the notes' own words
            form_total += float(nll[(ids[1:] >= vocab.phrase_id) & (ids[1:] <= vocab.phrase_id + len(KEYS))].sum())
    trigram, unigram = KneserNeyTrigram(train, vocab.size), UnigramModel(train, vocab.size)
    totals = {
        "word model": model_total,
        "trigram (Kneser-Ney)": sum(trigram.nll(ids) for ids in pieces),
        "unigram (add-one)": sum(unigram.nll(ids) for ids in pieces),
    }
    results = {
        name: {"nats_per_word": total / words, "bits_per_note": total / math.log(2) / notes}
        for name, total in totals.items()
    }
    if vocab.form:
        model = results["word model"]
        model["form_bits_per_note"] = form_total / math.log(2) / notes
        model["note_bits_per_note"] = model["bits_per_note"] - model["form_bits_per_note"]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=None, help="default: the checkpoint's training data")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test")
    parser.add_argument("--stride", type=whole(1, 8192), default=None, help="window step in words (default: block / 8)")
    parser.add_argument("--threads", type=whole(1, 1024), default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        word_model = WordModel(args.checkpoint)
        dataset = WordDataset(args.data or word_model.info["model_card"]["data"])
        results = evaluate(word_model, dataset, args.split, args.stride)
    except KeyboardInterrupt:
        print("stopped (Ctrl+C) before the evaluation finished: nothing to report", file=sys.stderr)
        return 130
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.checkpoint.name} on {dataset.folder.name}/{args.split}:")
    print(f"{'model':24} {'nats/word':>10} {'bits/note':>10}")
    for name, r in results.items():
        print(f"{name:24} {r['nats_per_word']:10.4f} {r['bits_per_note']:10.4f}")
    model = results["word model"]
    if "form_bits_per_note" in model:
        print(
            f"word model, the notes' own words: {model['note_bits_per_note']:.4f} bits/note "
            f"(+ {model['form_bits_per_note']:.4f} for PHRASE and the key)"
        )
    trigram = results["trigram (Kneser-Ney)"]["bits_per_note"]
    gain = 1 - results["word model"]["bits_per_note"] / trigram
    print(f"word model vs trigram: {abs(gain):.1%} {'fewer' if gain >= 0 else 'more'} bits per note")
    return 0


if __name__ == "__main__":
    sys.exit(main())
