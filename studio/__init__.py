"""Cantor studio: pygame-ce + pygame_gui. Reaches the models only through studio.engine."""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
