"""Small composite widgets shared by the panels."""

from __future__ import annotations

from collections.abc import Callable

import pygame
import pygame_gui
from pygame_gui.elements import UIHorizontalSlider, UILabel, UIProgressBar

SLIDER_ROW_H = 46


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
    ) -> None:
        x, y, w = rect.x, rect.y, rect.w
        self.caption = UILabel(pygame.Rect(x, y, w - 80, 20), caption, manager, container)
        self.value_label = UILabel(pygame.Rect(x + w - 80, y, 80, 20), "", manager, container, object_id="#value_label")
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

    def owns(self, event: pygame.event.Event) -> bool:
        return event.type == pygame_gui.UI_HORIZONTAL_SLIDER_MOVED and event.ui_element is self.slider


class PercentBar(UIProgressBar):
    """A progress bar that reads "42 %"."""

    def status_text(self) -> str:
        return f"{self.current_progress:.0f} %"
