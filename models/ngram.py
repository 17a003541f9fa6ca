"""N-gram baselines for the word model: add-one unigram and interpolated Kneser-Ney trigram.

Dense count arrays: the word vocabulary is about a hundred words, so V^3 counts fit easily.
Each piece is scored from its second word on, with its own START as the first history.
"""

from __future__ import annotations

import numpy as np

from models.sampling import Constraint
from tokenizer.words import WordVocabulary

START_ID = WordVocabulary.start_id


class UnigramModel:
    """P(w) = (count(w) + 1) / (N + V)."""

    def __init__(self, pieces: list[np.ndarray], vocab_size: int) -> None:
        counts = np.ones(vocab_size)
        for ids in pieces:
            counts += np.bincount(ids[1:], minlength=vocab_size)
        self.log_probs = np.log(counts / counts.sum())

    def nll(self, ids: np.ndarray) -> float:
        """Total negative log-likelihood (nats) of ids[1:]."""
        return float(-self.log_probs[ids[1:]].sum())


class KneserNeyTrigram:
    """Interpolated Kneser-Ney trigram with absolute discount D (0.75 by default)."""

    def __init__(self, pieces: list[np.ndarray], vocab_size: int, discount: float = 0.75) -> None:
        V, D = vocab_size, discount
        c3 = np.zeros((V, V, V))
        for ids in pieces:
            padded = np.concatenate([[ids[0]], ids])  # START START w1 ...
            np.add.at(c3, (padded[:-2], padded[1:-1], padded[2:]), 1)
        # lowest order: continuation counts, interpolated with uniform
        seen_bigrams = (c3.sum(axis=0) > 0).astype(float)  # [v, w]: bigram v w seen
        cont = seen_bigrams.sum(axis=0)  # N1+(. w)
        p1 = np.maximum(cont - D, 0) / cont.sum() + D * (cont > 0).sum() / cont.sum() / V
        # middle order: continuation counts of bigrams, N1+(. v w)
        n_vw = (c3 > 0).sum(axis=0).astype(float)  # [v, w]
        n_v = n_vw.sum(axis=1, keepdims=True)  # N1+(. v .)
        types_v = (n_vw > 0).sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            p2 = np.where(n_v > 0, (np.maximum(n_vw - D, 0) + D * types_v * p1[None, :]) / n_v, p1[None, :])
        # highest order: raw counts
        c_uv = c3.sum(axis=2, keepdims=True)
        types_uv = (c3 > 0).sum(axis=2, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            p3 = np.where(c_uv > 0, (np.maximum(c3 - D, 0) + D * types_uv * p2[None, :, :]) / c_uv, p2[None, :, :])
        self.log_probs = np.log(p3)

    def nll(self, ids: np.ndarray) -> float:
        padded = np.concatenate([[ids[0]], ids])
        return float(-self.log_probs[padded[:-2], padded[1:-1], padded[2:]].sum())

    def sample(self, grammar: Constraint, count: int, seed: int, end_id: int) -> list[int]:
        """Up to ``count`` ids after START (already read by ``grammar``), drawn under its mask;
        stops after ``end_id``. The floor a neural model must clear."""
        rng = np.random.default_rng(seed)
        history = [START_ID, START_ID]
        ids: list[int] = []
        while len(ids) < count:
            probs = np.exp(self.log_probs[history[-2], history[-1]]) * grammar.legal_mask()
            next_id = int(rng.choice(len(probs), p=probs / probs.sum()))
            grammar.advance(next_id)
            ids.append(next_id)
            history.append(next_id)
            if next_id == end_id:
                break
        return ids
