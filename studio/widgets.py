"""Small composite widgets shared by the panels."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable

import pygame
import pygame_gui
from pygame_gui.elements import (
    UIButton,
    UICheckBox,
    UIDropDownMenu,
    UIHorizontalSlider,
    UILabel,
    UIPanel,
    UIProgressBar,
    UITextBox,
    UITextEntryLine,
)

SLIDER_ROW_H = 46
SIDEBAR_W = 300
TALL = {"left": "left", "top": "top", "bottom": "bottom"}  # as tall as the window


def centred(manager: pygame_gui.UIManager, width: int, height: int) -> pygame.Rect:
    """A dialog's rectangle in the middle of the window (no taller than the window allows)."""
    window_w, window_h = manager.window_resolution
    rect = pygame.Rect(0, 0, width, min(height, window_h - 40))
    rect.center = (window_w // 2, window_h // 2)
    return rect


def sidebar(manager: pygame_gui.UIManager, container, height: int) -> UIPanel:
    """A tab's sidebar: SIDEBAR_W wide at its left edge, stretching with the window's height."""
    return UIPanel(
        pygame.Rect(0, 0, SIDEBAR_W, height), manager=manager, container=container, object_id="#sidebar", anchors=TALL
    )


class LabeledSlider:
    """A caption and its current value on one line, the slider under them.

    ``format_value`` turns the slider's value into what the user reads ("0.90", "off").
    """

    def __init__(
        self,
        rect: pygame.Rect,
        caption: str,
        value_range: tuple[float, float],
        start: float,
        manager: pygame_gui.UIManager,
        container,
        format_value: Callable[[float], str] = lambda v: f"{v:g}",
        click_increment: float = 1,
        value_w: int = 80,
        tip: str | None = None,
    ) -> None:
        x, y, w = rect.x, rect.y, rect.w
        caption_rect = pygame.Rect(x, y, w - value_w, 20)
        if tip:  # a button only for its tooltip: it reads as a label
            self.caption = UIButton(caption_rect, caption, manager, container, tool_tip_text=tip, object_id="#caption")
        else:
            self.caption = UILabel(caption_rect, caption, manager, container)
        self.value_label = UILabel(
            pygame.Rect(x + w - value_w, y, value_w, 20), "", manager, container, object_id="#value_label"
        )
        self.slider = UIHorizontalSlider(
            pygame.Rect(x, y + 20, w, 22),
            start,
            value_range,
            manager,
            container,
            click_increment=click_increment,
        )
        self.format_value = format_value
        self.refresh()

    @property
    def value(self) -> float:
        return self.slider.get_current_value()

    def set_value(self, value: float) -> None:
        self.slider.set_current_value(value)
        self.refresh()

    def refresh(self) -> None:
        self.value_label.set_text(self.format_value(self.value))

    def enable(self) -> None:
        for element in (self.caption, self.value_label, self.slider):
            element.enable()

    def disable(self) -> None:
        """Greyed out where it does not apply (the primer length for a new piece)."""
        for element in (self.caption, self.value_label, self.slider):
            element.disable()

    def owns(self, event: pygame.event.Event) -> bool:
        return event.type == pygame_gui.UI_HORIZONTAL_SLIDER_MOVED and event.ui_element is self.slider


def refresh_moved_slider(sliders: list[LabeledSlider], event: pygame.event.Event) -> bool:
    """Show the new value of the slider ``event`` moved; True if it is one of ``sliders``."""
    for slider in sliders:
        if slider.owns(event):
            slider.refresh()
            return True
    return False


MAX_SEED = 999_999_999  # nine digits: what the field holds, and what every sampler accepts


class SeedField:
    """ "Seed [123456] [x] random": with random on, every generation draws a new seed and shows it,
    so a take's seed can be typed back in to make it again."""

    def __init__(self, row: pygame.Rect, manager: pygame_gui.UIManager, container, random_on: bool = True) -> None:
        UILabel(pygame.Rect(row.x, row.y + 5, 40, 20), "Seed", manager, container)
        self.entry = UITextEntryLine(
            pygame.Rect(row.x + 44, row.y, 120, row.h), manager, container, initial_text=str(self._draw())
        )
        self.entry.set_allowed_characters("numbers")
        self.entry.set_text_length_limit(len(str(MAX_SEED)))
        self.random_box = UICheckBox(
            pygame.Rect(row.x + 176, row.y + (row.h - 18) // 2, 18, 18), "random", manager, container
        )
        if random_on:
            self.random_box.set_state(True)

    @staticmethod
    def _draw() -> int:
        return random.randrange(MAX_SEED + 1)

    @property
    def random(self) -> bool:
        return bool(self.random_box.get_state())

    @property
    def value(self) -> int:
        return min(MAX_SEED, int(self.entry.get_text() or 0))

    def roll(self, always: bool = False) -> None:
        """Before a generation: a new seed if random is on (or ``always``, for Retry)."""
        if self.random or always:
            self.entry.set_text(str(self._draw()))
            self.entry.select_range = [0, 0]  # a selection of the old text would outlive it:
            # pygame_gui then raises IndexError on the next Delete


class PercentBar(UIProgressBar):
    """A progress bar that reads "42 %"."""

    def status_text(self) -> str:
        return f"{self.current_progress:.0f} %"


class Column:
    """Lays a sidebar out top to bottom: each call takes the next row of the column."""

    def __init__(self, manager: pygame_gui.UIManager, container, x: int, width: int, y: int) -> None:
        self.manager, self.container = manager, container
        self.x, self.width, self.y = x, width, y

    def row(self, height: int, gap: int = 0) -> pygame.Rect:
        """The next ``height`` pixels of the column, leaving ``gap`` below."""
        rect = pygame.Rect(self.x, self.y, self.width, height)
        self.y += height + gap
        return rect

    def section(self, title: str) -> pygame.Rect:
        """A section's title; returns its row, whose right end may hold a small control."""
        row = self.row(18, 2)
        UILabel(row, title, self.manager, self.container, object_id="#section_label")
        return row

    def slider(
        self,
        caption: str,
        value_range: tuple[float, float],
        start: float,
        format_value: Callable[[float], str],
        click_increment: float = 1,
        gap: int = 0,
        value_w: int = 80,
        tip: str | None = None,
    ) -> LabeledSlider:
        rect = self.row(SLIDER_ROW_H, gap)
        return LabeledSlider(
            rect, caption, value_range, start, self.manager, self.container, format_value, click_increment, value_w, tip
        )

    def status_box(self, text: str, sidebar_h: int, min_h: int) -> UITextBox:
        """The status text at the foot of the column, down to the sidebar's bottom (it wraps)."""
        rect = pygame.Rect(self.x - 4, self.y, self.width + 8, max(min_h, sidebar_h - self.y - 8))
        return UITextBox(text, rect, self.manager, container=self.container, object_id="#status_box", anchors=TALL)

    def temperature(self, start: float = 1.0) -> LabeledSlider:
        """The temperature slider both tabs share (each with its own default)."""
        return self.slider(
            "Temperature", (0.1, 2.0), start, lambda v: f"{v:.2f}", click_increment=0.05, tip=TIPS["temperature"]
        )


TIPS = {  # what the sampling controls do to the music, in a musician's words
    "temperature": "How adventurous the music is. Lower: safer, plainer, more repetitive chords and lines; "
    "higher: more surprising notes and harmonies, and more mistakes. 1.0 plays the model as it learnt; "
    "the word model's 0.8 sounds closer to Bach's chorales (cadences, endings).",
    "top_k": "Lets the model choose only among its k likeliest next notes or durations. Small: cautious, "
    "conventional music; off: every choice the model can imagine.",
    "top_p": "Lets the model choose only among the likeliest choices that together make up this share. "
    "Lower: more predictable, closer to the style's commonplaces; off: nothing left out.",
    "words": "How long the piece may grow. A piece ends by itself with a cadence within this length; "
    "the bars and playing time are about what a chorale gets from it at the tempo in the bar below.",
}


def visible_text(text: str) -> str:
    """``text`` without the characters that have no width of their own (zero-width spaces and
    joiners, direction marks, controls), which a text field can neither show nor lay out."""
    return "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc", "Co", "Cs", "Cn"))


def set_running(button: UIButton, running: bool) -> None:
    """A tab's Generate button turns into a red Stop while its job runs, and back."""
    button.set_text("Stop" if running else "Generate")
    button.change_object_id("#stop_button" if running else "#generate_button")


def close_repicked_menu(event: pygame.event.Event) -> bool:
    """pygame_gui leaves a drop-down open when its chosen option is picked again (the options list
    drops its selection instead of making a new one): close it, the choice unchanged. True where
    the event was that."""
    if event.type != pygame_gui.UI_SELECTION_LIST_DROPPED_SELECTION:
        return False
    menu = getattr(event.ui_element, "parent_element", None)
    if not isinstance(menu, UIDropDownMenu) or menu.current_state is not menu.menu_states["expanded"]:
        return False
    menu.current_state.should_transition = True
    return True
