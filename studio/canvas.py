"""A UI element with a surface of its own, for everything the studio draws by hand.

The piano rolls, the code grid and the codebook explorer are canvases. Being elements of the
one UIManager, they sit in its layers: windows, drop-down menus and tooltips are drawn above
them and take the clicks that land on them. Nothing is drawn after ``draw_ui``.

A canvas repaints only when told that something changed (``invalidate``), during the
manager's update, so an idle window costs no drawing.
"""

from __future__ import annotations

import pygame
import pygame_gui
from pygame_gui.core import UIElement


class Canvas(UIElement):
    """Subclasses implement ``paint(surface)`` in the canvas's own coordinates (0, 0 at its top-left)."""

    def __init__(
        self,
        relative_rect: pygame.Rect,
        manager: pygame_gui.UIManager,
        container=None,
        anchors: dict | None = None,
    ) -> None:
        super().__init__(
            relative_rect,
            manager,
            container,
            starting_height=1,
            layer_thickness=1,
            anchors=anchors,
            element_id=["canvas"],
        )
        self._surface = pygame.Surface(self.rect.size)
        self._needs_paint = True
        self.paints = 0  # how many times it was painted, for tests and the benchmark
        self.repaint()

    def invalidate(self) -> None:
        """Something shown changed: paint again at the next update."""
        self._needs_paint = True

    def paint(self, surface: pygame.Surface) -> None:
        raise NotImplementedError

    def repaint(self) -> None:
        if self._surface.get_size() != self.rect.size:
            self._surface = pygame.Surface((max(1, self.rect.w), max(1, self.rect.h)))
        self._needs_paint = False
        self.paint(self._surface)
        self.paints += 1
        self._set_image(self._surface)  # clipped to the container, as every element is

    @property
    def needs_paint(self) -> bool:
        return self._needs_paint

    def update(self, time_delta: float) -> None:
        super().update(time_delta)
        if self._needs_paint and self.visible:
            self.repaint()

    def set_dimensions(self, dimensions, clamp_to_container: bool = False) -> None:
        super().set_dimensions(dimensions, clamp_to_container)
        self.invalidate()

    def update_containing_rect_position(self) -> None:
        super().update_containing_rect_position()  # the window was resized: anchors moved or stretched us
        self.invalidate()

    def local(self, rect: pygame.Rect) -> pygame.Rect:
        """A window rectangle in this canvas's coordinates."""
        return rect.move(-self.rect.x, -self.rect.y)

    def under_pointer(self, position: tuple[int, int]) -> bool:
        """True where ``position`` is on this canvas and no element above it (a window, a menu) is."""
        return self.rect.collidepoint(position) and (self.hovered or not self.ui_manager.get_hovering_any_element())
