"""Musical constraints on the sampler: the grammar's mask, narrowed at every note onset.

The grammar knows, before each word, where a pitch word would start its note and which notes
will still be sounding then. ``RuleConstraint`` uses that to refuse

* a note that would make more than ``max_voices`` different pitches sound at once;
* a note a semitone away from a pitch sounding at its onset (``no_clash``), except the
  dissonances of the style (``dissonances``, steps encoding): a passing or neighbour note on a
  weak part of the beat, approached by step and left by step, and a prepared suspension (the
  clash against a note held over from before), which resolves down by step. What a dissonance
  owes is enforced where it falls due: at the step where the dissonant note ends, a note a step
  away (down, for a suspension) must start, before the step may close; a gap may not pass it;
* a note that would make two voices move in parallel fifths or octaves after a four-voice chord
  (``no_parallels``). Voices are counted by pitch from the side the encoding writes first (the
  top in the steps encoding, the bass in the implicit one), over every note known at the onset,
  held ones included;
* a note outside the piece's range (``lowest``-``highest``);
* a word that would repeat, exactly, a run of ``no_repeat`` words already written since the
  rules took over (as Composer's Assistant offers);
* a gap (``sepxx dN``) after which no note could start that both the grammar and the rules allow.

A ``key`` does not refuse: it weighs every pitch outside its scale by ``out_of_key_weight`` (the
sampler adds ``logit_bias``), so chromatic passing notes stay possible; a weight of 0 forbids them.
A constraint never leads the sampler into a dead end: where it would leave no legal word at all,
it lets the grammar's own mask through for that word and counts it in ``relaxed``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from tokenizer.keys import scale_of
from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH, Note
from tokenizer.words import Grammar

PITCH_COUNT = HIGHEST_PIANO_PITCH - LOWEST_PIANO_PITCH + 1


@dataclass(frozen=True)
class Rules:
    """What a ``RuleConstraint`` enforces. The defaults are the four-part rules for chorales;
    range, key and repeats are free."""

    max_voices: int | None = 4  # None: any number
    no_clash: bool = True
    dissonances: bool = True  # with no_clash: passing notes, neighbours and suspensions, resolved
    no_parallels: bool = True
    lowest: int = LOWEST_PIANO_PITCH
    highest: int = HIGHEST_PIANO_PITCH
    key: str | None = None  # one of KEYS; None: any
    out_of_key_weight: float = 0.1  # what a pitch outside the key's scale is weighed by (0: forbidden)
    no_repeat: int = 0  # words; 0: off

    def __post_init__(self) -> None:
        if self.max_voices is not None and self.max_voices < 1:
            raise ValueError(f"max_voices must be at least 1 (got {self.max_voices})")
        if not LOWEST_PIANO_PITCH <= self.lowest <= self.highest <= HIGHEST_PIANO_PITCH:
            raise ValueError(
                f"the range must run upward within {LOWEST_PIANO_PITCH}-{HIGHEST_PIANO_PITCH} "
                f"(got {self.lowest}-{self.highest})"
            )
        if not 0.0 <= self.out_of_key_weight <= 1.0:
            raise ValueError(f"the out-of-key weight must be from 0 to 1 (got {self.out_of_key_weight})")
        if self.no_repeat != 0 and not 2 <= self.no_repeat <= 10_000:
            raise ValueError(f"no_repeat must be 0 (off) or 2 words or more (got {self.no_repeat})")
        if self.key is not None:
            in_scale = scale_of(self.key)
            if self.out_of_key_weight == 0 and not in_scale[np.arange(self.lowest, self.highest + 1) % 12].any():
                raise ValueError(f"the range {self.lowest}-{self.highest} holds no note of {self.key}")


NO_RULES = Rules(max_voices=None, no_clash=False, no_parallels=False)  # the grammar alone


@dataclass
class Dissonance:
    """A dissonant note the rules let through, and what it owes: at ``due`` (the step where the
    note ends; None while its duration is being read) a note ``pitch`` -1 or -2 must start, or, where
    it need not resolve down, one a step away either way."""

    pitch: int
    start: int
    down: bool
    due: int | None = None

    def resolutions(self) -> tuple[int, ...]:
        return (
            (self.pitch - 1, self.pitch - 2)
            if self.down
            else (self.pitch - 2, self.pitch - 1, self.pitch + 1, self.pitch + 2)
        )


def parallel_pairs(before: np.ndarray, chords: np.ndarray) -> np.ndarray:
    """(n,) int: per row of ``chords`` (n, m), the pairs of its first four voices that move in
    parallel fifths or octaves from ``before`` (4,), voice by voice in the order given."""
    count = np.zeros(len(chords), dtype=int)
    voices = min(4, chords.shape[1])
    for upper in range(voices):
        for lower in range(upper + 1, voices):
            interval = abs(int(before[lower] - before[upper])) % 12
            if interval not in (0, 7):
                continue
            moved_upper, moved_lower = chords[:, upper] - before[upper], chords[:, lower] - before[lower]
            count += (
                (moved_upper != 0)
                & (moved_lower != 0)
                & ((moved_upper > 0) == (moved_lower > 0))
                & (np.abs(chords[:, lower] - chords[:, upper]) % 12 == interval)
            )
    return count


class RuleConstraint:
    """A grammar with musical rules on top; the sampler's ``Constraint``. ``steps_per_quarter``
    tells the beats, where a passing note may not fall."""

    def __init__(self, grammar: Grammar, rules: Rules, steps_per_quarter: int = 4) -> None:
        self.grammar = grammar
        self.vocab = grammar.vocab
        self.rules = rules
        self.steps_per_quarter = steps_per_quarter
        self.relaxed = 0  # words for which the rules stepped aside
        self.forgiven = 0  # dissonances left unresolved because the other rules left no room
        self._styled = rules.no_clash and rules.dissonances and grammar.vocab.encoding == "steps"
        self._owed: list[Dissonance] = []  # dissonances not yet resolved
        self._active: list[Note] = []  # closed notes that may still sound (or did at the last onset)
        self._seen = 0  # of grammar.notes, how many are in _active already
        written = grammar.notes + ([pending] if (pending := grammar.pending_note()) else [])
        onsets = sorted({note.start for note in written})  # a primer's, read before the rules came
        self._onset: int | None = onsets[-1] if onsets else None  # the step of the latest note
        self._previous_onset: int | None = onsets[-2] if len(onsets) > 1 else None  # the onset before it
        self._side = -1 if grammar.vocab.encoding == "steps" else 1  # -1: a step is written top down
        pitches = np.arange(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)
        # the pitches the rules never allow: outside the range, or outside a key that must be kept
        self.pitch_limits = (pitches >= rules.lowest) & (pitches <= rules.highest)
        if rules.key is not None and rules.out_of_key_weight == 0:
            self.pitch_limits &= scale_of(rules.key)[pitches % 12]
        self._bias = self._key_bias()
        self._written: list[int] = []  # words since the rules took over (for no_repeat)
        self._followers: dict[tuple[int, ...], set[int]] = {}  # each run of no_repeat - 1 words: what followed it
        self._cache: dict[tuple, np.ndarray] = {}  # _allowed_at's answers while len(grammar.notes) ...
        self._cached_notes = -1  # ... is this

    # -- the Constraint protocol ---------------------------------------------------------------
    def reset(self) -> None:
        self.grammar.reset()
        self._active, self._seen = [], 0
        self._onset = self._previous_onset = None
        self._written, self._followers = [], {}
        self._owed = []
        self._cache, self._cached_notes = {}, -1

    def advance(self, word_id: int) -> None:
        if self._styled and self.vocab.is_pitch(word_id):
            self._note_dissonance(self.vocab.pitch_of(word_id), self.grammar.onset_of(self.vocab.pitch_of(word_id)))
        self.grammar.advance(word_id)
        if self.vocab.is_pitch(word_id) and self.grammar.step != self._onset:
            self._previous_onset, self._onset = self._onset, self.grammar.step
        n = self.rules.no_repeat
        if n:
            self._written.append(word_id)
            if len(self._written) >= n:
                self._followers.setdefault(tuple(self._written[-n:-1]), set()).add(word_id)

    def logit_bias(self) -> np.ndarray | None:
        """Log-weights to add to the logits: the key's, or None."""
        return self._bias

    def legal_mask(self) -> np.ndarray:
        mask = self.grammar.legal_mask()
        vocab = self.vocab
        pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
        in_gap = self.grammar.in_gap
        repeated = self._repeating_words()
        if not mask[pitches].any() and not in_gap and not repeated:
            return mask  # read-only and cached by the grammar: the sampler caches it too
        narrowed = self._narrowed(mask, in_gap, repeated)
        if not narrowed.any() and self._owed:  # a resolution the other rules leave no room for
            self._owed = []
            self.forgiven += 1
            narrowed = self._narrowed(mask, in_gap, repeated)
        if not narrowed.any():
            self.relaxed += 1
            return mask
        return narrowed

    def _narrowed(self, mask: np.ndarray, in_gap: bool, repeated: list[int]) -> np.ndarray:
        vocab = self.vocab
        pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
        narrowed = mask.copy()
        if mask[pitches].any():
            narrowed[pitches] &= self._allowed_pitches()
        if in_gap and mask[vocab.durations].any():
            narrowed[vocab.durations] &= self._allowed_gap_ends(mask[vocab.durations])
        if self._styled and self._owed_at(self.grammar.step) and not in_gap:  # the step owes a resolution
            narrowed[vocab.sep_id] = False
        if self._styled and self._owed:  # nor may the piece end owing one
            narrowed[vocab.end_id] = False
        narrowed[repeated] = False
        return narrowed

    # -- the rules -----------------------------------------------------------------------------
    def _repeating_words(self) -> list[int]:
        """The words that would end a run of ``no_repeat`` words written before."""
        n = self.rules.no_repeat
        return sorted(self._followers.get(tuple(self._written[-(n - 1) :]), ())) if n else []

    def _key_bias(self) -> np.ndarray | None:
        """(V,) float32 log-weights: 0, and log(out_of_key_weight) on pitch words outside the key.
        None without a key, or where the weight is 1 (no change) or 0 (the mask refuses them)."""
        weight = self.rules.out_of_key_weight
        if self.rules.key is None or weight in (0.0, 1.0):
            return None
        bias = np.zeros(self.vocab.size, dtype=np.float32)
        pitches = np.arange(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)
        outside = ~scale_of(self.rules.key)[pitches % 12]
        bias[self.vocab.first_pitch_id + np.flatnonzero(outside)] = np.log(weight)
        return bias

    def sounding_at(self, step: int) -> np.ndarray:
        """Pitches sounding at ``step`` (not before the previous onset), sorted, counting the
        note whose duration is being read as ending where it stands."""
        grammar = self.grammar
        if self._seen < len(grammar.notes):
            self._active += grammar.notes[self._seen :]
            self._seen = len(grammar.notes)
        keep_from = min(grammar.step, self._previous_onset if self._previous_onset is not None else grammar.step)
        self._active = [n for n in self._active if n.end > keep_from]
        notes = self._active
        if (pending := grammar.pending_note()) is not None:
            notes = [*notes, pending]
        return np.unique([n.pitch for n in notes if n.start <= step < n.end]).astype(int)

    def _allowed_at(self, step: int) -> np.ndarray:
        """(88,) bool over pitches 21-108, read-only: may a note start at ``step`` on this pitch?
        Kept while the notes written, the onsets and the resolutions owed stay as they are: a gap's
        landing, probed for its duration word, is asked again for the note after it."""
        grammar = self.grammar
        if self._styled:
            self._first_due()  # settles what is owed, which the answer depends on
        if self._cached_notes != len(grammar.notes):
            self._cache, self._cached_notes = {}, len(grammar.notes)
        pending = grammar.pending_note()
        owed = tuple((d.pitch, d.start, d.down, d.due) for d in self._owed)
        key = (step, pending and (pending.pitch, pending.start, pending.end), self._onset, self._previous_onset, owed)
        if (allowed := self._cache.get(key)) is None:
            allowed = self._cache[key] = self._rules_at(step)
            allowed.flags.writeable = False
        return allowed

    def _rules_at(self, step: int) -> np.ndarray:
        """``_allowed_at``, worked out."""
        allowed = self.pitch_limits.copy()
        sounding = self.sounding_at(step)
        if not len(sounding) and not self._owed:  # nothing to clash or move with, nothing owed
            return allowed
        index = sounding - LOWEST_PIANO_PITCH
        max_voices = self.rules.max_voices
        if max_voices is not None and len(sounding) >= max_voices:
            allowed[:] = False
            if len(sounding) == max_voices:
                allowed[index] = self.pitch_limits[index]  # striking a sounding pitch again adds no voice
        if self.rules.no_clash:
            clashing = np.zeros(PITCH_COUNT, dtype=bool)
            for neighbour in (index - 1, index + 1):
                clashing[neighbour[(neighbour >= 0) & (neighbour < PITCH_COUNT)]] = True
            if self._styled:
                clashing &= ~self._styled_dissonances(step)
            allowed &= ~clashing
        if self.rules.no_parallels:
            allowed &= self._without_parallels(step, sounding)
        if self._styled:
            due = self._first_due()
            if due is not None and due < step:
                allowed[:] = False  # a resolution was due earlier: nothing may start past it
            for owed in self._owed:  # a dissonant note may not be struck again before it resolves
                if owed.start < step and (owed.due is None or step < owed.due):
                    allowed[owed.pitch - LOWEST_PIANO_PITCH] = False
            allowed &= self._keeping_resolutions(step)
        return allowed

    # -- the dissonances of the style ----------------------------------------------------------
    def _held_and_ending(self, step: int) -> tuple[list[Note], list[Note]]:
        """The notes sounding at ``step`` that began before it, and those that end exactly there."""
        self.sounding_at(step)  # brings _active up to date
        held = [n for n in self._active if n.start < step < n.end]
        ending = [n for n in self._active if n.end == step]
        return held, ending

    def _styled_dissonances(self, step: int) -> np.ndarray:
        """(88,) bool: pitches a semitone from a sounding note that the style allows at ``step``: a
        passing or neighbour note (off the beat, a step from a note sounding just before), or a note against
        a suspension (a note held over from the chord before)."""
        held, ending = self._held_and_ending(step)
        allowed = np.zeros(PITCH_COUNT, dtype=bool)
        pitches = np.arange(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)
        if step % self.steps_per_quarter:  # approached by step from a note sounding just before
            for note in held + ending:
                allowed |= (np.abs(pitches - note.pitch) >= 1) & (np.abs(pitches - note.pitch) <= 2)
        for note in held:  # sounding in the chord before: prepared
            allowed |= np.abs(pitches - note.pitch) == 1
        return allowed

    def _note_dissonance(self, pitch: int, step: int) -> None:
        """Before ``pitch`` is written at ``step``: record what it owes if it clashes, and settle
        what it resolves."""
        self._owed = [d for d in self._owed if d.due is None or d.due >= step]  # a missed one is gone
        for owed in self._owed:
            if owed.due == step and pitch in owed.resolutions():
                self._owed.remove(owed)
                break
        sounding = self.sounding_at(step)
        if not np.isin([pitch - 1, pitch + 1], sounding).any():
            return
        held, _ = self._held_and_ending(step)
        suspended = [n for n in held if abs(n.pitch - pitch) == 1]
        if suspended:
            for note in suspended:
                if not any(d.pitch == note.pitch and d.start == note.start for d in self._owed):
                    self._owed.append(Dissonance(note.pitch, note.start, down=True, due=note.end))
        else:
            self._owed.append(Dissonance(pitch, step, down=False))

    def _first_due(self) -> int | None:
        """The earliest step at which a resolution is owed (a dissonant note whose duration is
        known ends there)."""
        for owed in self._owed:
            if owed.due is None:
                closed = [n for n in self.grammar.notes[-8:] if n.pitch == owed.pitch and n.start == owed.start]
                owed.due = closed[0].end if closed else None
        return min((d.due for d in self._owed if d.due is not None), default=None)

    def _owed_at(self, step: int) -> list[Dissonance]:
        """The resolutions due at ``step`` and not yet made."""
        self._first_due()
        return [d for d in self._owed if d.due == step]

    def _keeping_resolutions(self, step: int) -> np.ndarray:
        """(88,) bool: at a step that owes resolutions, written top down, a pitch may not pass
        below the lowest pitch that would resolve one still owed."""
        allowed = np.ones(PITCH_COUNT, dtype=bool)
        for owed in self._owed_at(step):
            allowed[: max(0, min(owed.resolutions()) - LOWEST_PIANO_PITCH)] = False
        return allowed

    def _without_parallels(self, step: int, sounding: np.ndarray) -> np.ndarray:
        """(88,) bool: False where a note at ``step`` would add a pair of voices moving in parallel
        fifths or octaves, after a four-voice chord. Voices are counted from the side written first
        over every note known at ``step``, held ones included: a note written above a held one moves
        it down a voice, which may make that voice, too, leap in parallel with another; and a fourth
        voice may not complete a chord whose voices, counted so, already move in parallel."""
        allowed = np.ones(PITCH_COUNT, dtype=bool)
        previous = self._onset if self._onset is not None and step > self._onset else self._previous_onset
        if previous is None:
            return allowed
        before = np.sort(self._side * self.sounding_at(previous))  # voices from the side written first
        if len(before) != 4:
            return allowed
        known = np.sort(self._side * sounding)
        new = self._side * np.arange(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)  # every candidate at once
        voice = np.searchsorted(known, new)[:, None]  # the candidate's voice: how many known voices precede it
        column = np.arange(len(known) + 1)
        above, below = np.append(known, 0)[column], np.insert(known, 0, 0)[column]  # known voices, shifted past it
        chords = np.where(column < voice, above, np.where(column == voice, new[:, None], below))  # (88, known + 1)
        allowed = parallel_pairs(before, chords) == 0
        allowed[sounding - LOWEST_PIANO_PITCH] = True  # striking a sounding pitch again adds no voice
        return allowed

    def _allowed_pitches(self) -> np.ndarray:
        """(88,) bool: the pitches whose note, started where the grammar would start it, obeys
        the rules. In the implicit encoding a pitch's onset depends on the pitch."""
        grammar = self.grammar
        onsets = np.array([grammar.onset_of(p) for p in (LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH)])
        if onsets[0] == onsets[1]:
            return self._allowed_at(int(onsets[0]))
        per_pitch = np.array([grammar.onset_of(p) for p in range(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)])
        allowed = np.zeros(PITCH_COUNT, dtype=bool)
        for onset in np.unique(per_pitch):
            allowed[per_pitch == onset] = self._allowed_at(int(onset))[per_pitch == onset]
        return allowed

    def _allowed_gap_ends(self, legal: np.ndarray) -> np.ndarray:
        """(dMAX,) bool over the duration words that may come next in a gap: one that ends the
        gap must leave a note the grammar and the rules both allow (in the implicit encoding a
        gap may demand a pitch above the last step's, where only held pitches may sound)."""
        vocab, grammar = self.vocab, self.grammar
        pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
        allowed = legal.copy()
        due = self._first_due() if self._styled else None
        if due is not None and grammar.onset_of(LOWEST_PIANO_PITCH) + vocab.max_duration > due:
            allowed[-1] = False  # dMAX would carry the gap past a step where a dissonance resolves
        for steps in range(1, vocab.max_duration):  # dMAX keeps the gap open: nothing to check yet
            if not legal[steps - 1]:
                continue
            probe = copy.copy(grammar)  # a duration word changes only the probe's own counters
            probe.advance(vocab.duration_id(steps))
            landing = probe.onset_of(LOWEST_PIANO_PITCH)
            after = probe.legal_mask()  # a note, or END where a gap must end (tokenizer/tasks.py)
            allowed[steps - 1] = bool((after[pitches] & self._allowed_at(landing)).any() or after[vocab.end_id])
        return allowed
