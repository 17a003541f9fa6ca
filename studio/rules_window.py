"""The Rules window: what the word model's sampler must obey beyond its grammar.

The four-part checkbox in the sidebar switches the voice rules on (at most N voices, no semitone
clash, no parallel fifths or octaves); this window sets N, and the rules that hold either way:
a key (notes outside its scale weighed down, or never), the piece's range, no exact repeat of a
run of words, and whether a new piece sings its opening phrases again (bar form). Every change
is checked as a whole (tokenizer/constraints.py) and kept in the settings file only when it makes
sense: a range with no note of the key is refused here, with the reason, before any generation
can trip on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pygame
import pygame_gui
from pygame_gui.elements import UIButton, UILabel, UISelectionList, UIWindow

from studio.settings import RULE_FIELDS, Settings
from studio.widgets import Column, centred, refresh_moved_slider
from tokenizer.constraints import Rules
from tokenizer.keys import KEYS, pitch_name
from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH

ANY_KEY = "Any key"
BAR_FORM_BUTTONS = {  # Settings.bar_form: (label, tooltip)
    "bach": ("As Bach", "About one new piece in ten, as often as in Bach's chorales"),
    "always": ("Always", "Every new piece"),
    "never": ("Never", "No new piece"),
}
BAR_FORM_TIP = (
    "Bar form (A A B): a new piece sings its first two phrases again from the next bar line, "
    "as many chorale tunes do, then goes on"
)
APPLIES = "Each change applies from the next take."  # the window's last line, until a change is refused


class RulesWindow(UIWindow):
    """``on_change()`` is called after each accepted change (the settings already hold it)."""

    def __init__(self, manager: pygame_gui.UIManager, settings: Settings, on_change: Callable[[], None]) -> None:
        super().__init__(centred(manager, 340, 480), manager, window_display_title="Rules", object_id="#rules_window")
        self.settings, self.on_change = settings, on_change
        inner = self.get_container().get_rect()
        column = Column(manager, self, 10, inner.w - 20, 8)
        piano = (LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH)
        self.voices = column.slider("Voices at most (four-part rules)", (1, 8), settings.max_voices, _whole, gap=6)
        UILabel(column.row(20, 2), "Key", manager, self, object_id="#section_label")
        key = settings.key or ANY_KEY
        self.keys = UISelectionList(
            column.row(120, 6), [ANY_KEY, *KEYS], manager, container=self, default_selection=key
        )
        self.weight = column.slider(
            "Notes outside the key", (0.0, 1.0), settings.out_of_key_weight, _weight, click_increment=0.05, gap=6
        )
        self.lowest = column.slider("Lowest note", piano, settings.lowest, pitch_name)
        self.highest = column.slider("Highest note", piano, settings.highest, pitch_name, gap=6)
        self.no_repeat = column.slider("No exact repeat of", (0, 64), settings.no_repeat, _words, gap=6)
        caption = column.row(20, 2)  # a button only for its tooltip: it reads as a label
        UIButton(
            caption, "Opening sung again (bar form)", manager, self, tool_tip_text=BAR_FORM_TIP, object_id="#caption"
        )
        row = column.row(30, 6)
        width = (row.w - 8) // 3
        self.bar_form = {
            name: UIButton(
                pygame.Rect(row.x + i * (width + 4), row.y, width, row.h), label, manager, self, tool_tip_text=tip
            )
            for i, (name, (label, tip)) in enumerate(BAR_FORM_BUTTONS.items())
        }
        self._show_bar_form(settings.bar_form)
        self.message = UILabel(column.row(22), APPLIES, manager, self, object_id="#value_label")
        self.sliders = [self.voices, self.weight, self.lowest, self.highest, self.no_repeat]
        chrome = self.rect.h - inner.h  # the title bar and borders
        height = chrome + column.y + 6  # as tall as what it holds: no empty band below
        self.set_dimensions((self.rect.w, height))
        self.set_position((self.rect.x, max(0, (manager.get_root_container().get_rect().h - height) // 2)))

    def process_event(self, event: pygame.event.Event) -> bool:
        if refresh_moved_slider(self.sliders, event):
            if self.lowest.owns(event) and self.lowest.value > self.highest.value:
                self.highest.set_value(self.lowest.value)  # the range runs upward: one end pushes the other
            elif self.highest.owns(event) and self.highest.value < self.lowest.value:
                self.lowest.set_value(self.highest.value)
            self._apply()
            return True
        if event.type == pygame_gui.UI_BUTTON_PRESSED and event.ui_element in self.bar_form.values():
            self._show_bar_form(next(name for name, button in self.bar_form.items() if button is event.ui_element))
            self._apply()
            return True
        if event.type == pygame_gui.UI_SELECTION_LIST_NEW_SELECTION and event.ui_element is self.keys:
            self._apply()
            return True
        return super().process_event(event)

    def _show_bar_form(self, name: str) -> None:
        self.bar_form_shown = name
        for other, button in self.bar_form.items():
            button.select() if other == name else button.unselect()

    def _apply(self) -> None:
        """Keep what the controls say if it makes a valid set of rules; else say why."""
        chosen = self.keys.get_single_selection() or ANY_KEY
        candidate = replace(
            self.settings,
            max_voices=int(self.voices.value),
            key="" if chosen == ANY_KEY else chosen,
            out_of_key_weight=round(self.weight.value, 2),
            lowest=int(self.lowest.value),
            highest=int(self.highest.value),
            no_repeat=int(self.no_repeat.value) if self.no_repeat.value >= 2 else 0,
            bar_form=self.bar_form_shown,
        )
        try:
            candidate.rules()
        except ValueError as err:
            self.message.set_text(str(err))
            return
        for name in RULE_FIELDS:
            setattr(self.settings, name, getattr(candidate, name))
        self.message.set_text(APPLIES)
        self.settings.save()
        self.on_change()


def describe(rules: Rules | None, bar_form: str = "bach") -> str:
    """The rules in a few words, for the status line; ``bar_form`` as ``Settings.bar_form``."""
    form = {"always": "a new piece's opening sung again", "never": "no opening sung again"}.get(bar_form)
    if rules is None:
        return "none (the model alone)" + (f"; {form}" if form else "")
    parts = []
    if rules.max_voices is not None:
        parts.append(f"at most {rules.max_voices} voices, no parallels, clashes only as Bach writes them")
    if rules.key:
        outside = "never" if rules.out_of_key_weight == 0 else f"weighed {rules.out_of_key_weight:g}"
        parts.append(f"{rules.key} (other notes {outside})")
    if (rules.lowest, rules.highest) != (LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH):
        parts.append(f"{pitch_name(rules.lowest)}-{pitch_name(rules.highest)}")
    if rules.no_repeat:
        parts.append(f"no run of {rules.no_repeat} words repeated")
    if form:
        parts.append(form)
    return "; ".join(parts)


def _whole(value: float) -> str:
    return f"{int(value)}"


def _weight(value: float) -> str:
    return "never" if value < 0.005 else "as likely" if value > 0.995 else f"weight {value:.2f}"


def _words(value: float) -> str:
    return "off" if int(value) < 2 else f"{int(value)} words"
