"""Cantor's tokenizer layer: notes in and out of files, words and quarter slices.

Pure Python + numpy. Imports neither torch nor pygame.
"""

from tokenizer.errors import CantorError
from tokenizer.notes import Note, NoteSequence

__all__ = ["CantorError", "Note", "NoteSequence"]
