"""Drive the real app through real pygame events: used by ``--smoke``, the tests and the benchmark.

Each helper moves the real pointer (pygame.mouse.set_pos, which the dummy video driver honours,
and which pygame_gui reads for hovering and dragging) and posts the same events a mouse or
keyboard would, running a frame after each.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pygame


def _post(app, event_type: int, **fields) -> None:
    pygame.event.post(pygame.event.Event(event_type, **fields))
    app.step()


def move(app, position: tuple[int, int]) -> None:
    pygame.mouse.set_pos(position)
    _post(app, pygame.MOUSEMOTION, pos=position, rel=(0, 0), buttons=(0, 0, 0))


def click(app, position: tuple[int, int], button: int = 1) -> None:
    """Move there, press and release, then two frames for the widgets' own events to land
    (a list item's press becomes the list's selection a frame later)."""
    move(app, position)
    _post(app, pygame.MOUSEBUTTONDOWN, pos=position, button=button)
    _post(app, pygame.MOUSEBUTTONUP, pos=position, button=button)
    app.step()
    app.step()


def drag(app, start: tuple[int, int], end: tuple[int, int], steps: int = 8) -> None:
    """Press at ``start``, move in ``steps`` to ``end``, release."""
    move(app, start)
    _post(app, pygame.MOUSEBUTTONDOWN, pos=start, button=1)
    for i in range(1, steps + 1):
        point = (start[0] + (end[0] - start[0]) * i // steps, start[1] + (end[1] - start[1]) * i // steps)
        pygame.mouse.set_pos(point)
        _post(app, pygame.MOUSEMOTION, pos=point, rel=(0, 0), buttons=(1, 0, 0))
    _post(app, pygame.MOUSEBUTTONUP, pos=end, button=1)


def press(app, key: int, mod: int = 0) -> None:
    """A key press and release."""
    _post(app, pygame.KEYDOWN, key=key, mod=mod, unicode="", scancode=0)
    _post(app, pygame.KEYUP, key=key, mod=mod, unicode="", scancode=0)


def run_until(app, condition: Callable[[], bool], timeout_s: float = 300.0, what: str = "the app") -> None:
    """Run frames until ``condition()`` holds; TimeoutError after ``timeout_s``.

    The ceiling is generous on purpose: a test waits for the event it needs, however busy the
    machine is (a worker's start, torch's import and a model's load can take long under load).
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        app.step()


def type_text(app, entry, text: str) -> None:
    """Click into a text field, select all (Ctrl+A), type ``text`` and press Return."""
    click(app, entry.rect.center)
    press(app, pygame.K_a, pygame.KMOD_CTRL)
    for character in text:
        pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text=character))
    app.step()
    press(app, pygame.K_RETURN)


def choose(app, menu, option_text: str) -> None:
    """Open a drop-down menu and click one of its options."""
    click(app, menu.rect.center)
    items = menu.current_state.options_selection_list.item_list
    button = next(item["button_element"] for item in items if item["text"] == option_text)
    click(app, button.rect.center)


def start_generating(app, start: Callable[[], None], notes: int = 5, tries: int = 10) -> None:
    """``start()`` a take and run frames until it has drawn ``notes`` notes while still writing. A
    small model may end a piece by itself within a few notes: then another take (a new seed)."""
    panel = app.generate
    for _ in range(tries):
        start()
        run_until(app, lambda: len(panel.piano_roll.generated) >= notes or not panel.generating, what="notes")
        if panel.generating:
            return
    raise TimeoutError(f"no take was still writing after {notes} notes in {tries} tries")
