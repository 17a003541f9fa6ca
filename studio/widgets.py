"""Small composite widgets shared by the panels."""

from __future__ import annotations

from collections.abc import Callable

import pygame
import pygame_gui
from pygame_gui.elements import UIButton, UIHorizontalSlider, UILabel, UIProgressBar

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


def refresh_moved_slider(sliders: list[LabeledSlider], event: pygame.event.Event) -> bool:
    """Show the new value of the slider ``event`` moved; True if it is one of ``sliders``."""
    for slider in sliders:
        if slider.owns(event):
            slider.refresh()
            return True
    return False


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

    def section(self, title: str) -> None:
        UILabel(self.row(18, 2), title, self.manager, self.container, object_id="#section_label")

    def slider(
        self,
        caption: str,
        value_range: tuple[float, float],
        start: float,
        format_value: Callable[[float], str],
        click_increment: float = 1,
        gap: int = 0,
    ) -> LabeledSlider:
        rect = self.row(SLIDER_ROW_H, gap)
        return LabeledSlider(
            rect, caption, value_range, start, self.manager, self.container, format_value, click_increment
        )

    def temperature(self) -> LabeledSlider:
        """The temperature slider both tabs share."""
        return self.slider("Temperature", (0.1, 2.0), 1.0, lambda v: f"{v:.2f}", click_increment=0.05)


def set_running(button: UIButton, running: bool) -> None:
    """A tab's Generate button turns into a red Stop while its job runs, and back."""
    button.set_text("Stop" if running else "Generate")
    button.change_object_id("#stop_button" if running else "#generate_button")
