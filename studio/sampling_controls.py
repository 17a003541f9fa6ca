"""The Generate tab's SAMPLING section: how the model draws each word.

The four-part rules box, temperature, the word budget (said as bars and playing time), top-k
and top-p, and the seed. Their choices of the random seed and of the four-part rules are kept in
the studio's settings; the sliders start at the defaults each time the studio opens.
"""

from __future__ import annotations

import pygame
import pygame_gui
from pygame_gui.elements import UICheckBox

from studio import engine as eng
from studio.settings import Settings
from studio.widgets import SLIDER_ROW_H, TIPS, Column, LabeledSlider, SeedField, refresh_moved_slider
from tokenizer.notes import DEFAULT_TEMPO_QPM

WORDS_PER_QUARTER = 12.2  # Bach's chorales in the steps encoding: 585 words for 48 quarters (medians)
DEFAULTS = {"temperature": eng.GenerationSettings.temperature, "words": eng.GenerationSettings.words}


def words_and_length(words: float, qpm: float = DEFAULT_TEMPO_QPM) -> str:
    """A word budget as a musician reads it: about the bars and the playing time it gives a chorale."""
    quarters = words / WORDS_PER_QUARTER
    seconds = round(quarters * 60 / qpm)
    return f"{int(words)} · {quarters / 4:.0f} bars · {seconds // 60}:{seconds % 60:02d}"


class SamplingControls:
    """The SAMPLING section, built at the bottom of ``column`` so far."""

    def __init__(
        self, column: Column, manager: pygame_gui.UIManager, side, settings: Settings, vocabulary_size: int
    ) -> None:
        self.app_settings = settings
        row = column.section("SAMPLING")
        self.voice_rules = UICheckBox(
            pygame.Rect(row.right - 154, row.y, 18, 18),
            "four-part rules",
            manager,
            side,
            tool_tip_text="At most 4 notes at once, no new note a semitone from a sounding one, "
            "no parallel fifths or octaves",
        )
        if settings.voice_rules:
            self.voice_rules.set_state(True)
        self.temperature = column.temperature(DEFAULTS["temperature"])
        self.words = column.slider(
            "Words",
            (32, 2048),
            DEFAULTS["words"],
            lambda v: words_and_length(v, settings.bpm),
            32,
            value_w=170,
            tip=TIPS["words"],
        )
        row = column.row(SLIDER_ROW_H, 4)  # top-k and top-p side by side: the status below keeps its lines
        half = (row.w - 12) // 2
        self.top_k = LabeledSlider(
            pygame.Rect(row.x, row.y, half, row.h),
            "Top-k",
            (0, vocabulary_size),
            0,
            manager,
            side,
            lambda v: "off" if int(v) == 0 else f"{int(v)}",
            value_w=40,
            tip=TIPS["top_k"],
        )
        self.top_p = LabeledSlider(
            pygame.Rect(row.right - half, row.y, half, row.h),
            "Top-p",
            (0.5, 1.0),
            1.0,
            manager,
            side,
            lambda v: "off" if v >= 0.999 else f"{v:.2f}",
            click_increment=0.01,
            value_w=40,
            tip=TIPS["top_p"],
        )
        self.seed = SeedField(column.row(30, 8), manager, side, random_on=settings.random_seed)
        self.seed_entry, self.random_seed = self.seed.entry, self.seed.random_box
        self.sliders = [self.temperature, self.words, self.top_k, self.top_p]

    def settings(self, **rest) -> eng.GenerationSettings:
        """What the sliders and the seed field say now, with ``rest`` (rules, key, …) beside them."""
        top_k, top_p = int(self.top_k.value), self.top_p.value
        return eng.GenerationSettings(
            temperature=round(self.temperature.value, 3),
            words=int(self.words.value),
            top_k=top_k if top_k > 0 else None,
            top_p=1.0 if top_p >= 0.999 else round(top_p, 3),
            seed=self.seed.value,
            **rest,
        )

    def reset(self) -> None:
        """The sliders back to their defaults (the seed and the four-part box stay as chosen)."""
        self.temperature.set_value(DEFAULTS["temperature"])
        self.words.set_value(DEFAULTS["words"])
        self.top_k.set_value(0)
        self.top_p.set_value(1.0)

    def process_event(self, event: pygame.event.Event) -> bool:
        """A slider moved, or a kept choice (random seed, four-part rules) changed: saved at once."""
        if event.type in (pygame_gui.UI_CHECK_BOX_CHECKED, pygame_gui.UI_CHECK_BOX_UNCHECKED):
            if event.ui_element is self.random_seed:
                self.app_settings.random_seed = self.seed.random
                self.app_settings.save()
                return True
            if event.ui_element is self.voice_rules:
                self.app_settings.voice_rules = bool(self.voice_rules.get_state())
                self.app_settings.save()
                return True
        return refresh_moved_slider(self.sliders, event)
