"""The studio's small settings file (SoundFont, instrument, tempo, export folder), in JSON.

Lives in the studio's home folder (``$CANTOR_HOME``, default ``~/.cantor``) beside the takes.
An unreadable file is set aside (``settings.json.corrupt``) before anything is written, and the
defaults are used: it never stops the studio. Values out of range are brought into it, and said.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from tokenizer.atomic import aside_path, atomic_write_text
from tokenizer.constraints import NO_RULES, Rules
from tokenizer.errors import CantorError
from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH
from tokenizer.repeat import BAR_FORM

RULE_FIELDS = ("max_voices", "key", "out_of_key_weight", "lowest", "highest", "no_repeat", "bar_form")


def studio_home() -> Path:
    return Path(os.environ.get("CANTOR_HOME", Path.home() / ".cantor"))


MAX_SETTINGS_BYTES = 64 * 1024


@dataclass
class Settings:
    soundfont: str = ""  # empty: the default TimGM6mb.sf2
    instrument: str = "Piano"
    bpm: int = 96
    export_folder: str = ""
    open_folder: str = ""  # where the last file opened was: the next Open… starts there
    random_seed: bool = True
    voice_rules: bool = True  # the word model's four-part rules (tokenizer/constraints.py)
    max_voices: int = 4  # with the four-part rules
    key: str = ""  # "": any key; else one of tokenizer.constraints.KEYS
    out_of_key_weight: float = 0.1
    lowest: int = LOWEST_PIANO_PITCH
    highest: int = HIGHEST_PIANO_PITCH
    no_repeat: int = 0  # words; 0: off
    # a key of tokenizer.repeat.BAR_FORM: new pieces sing their opening again as often as Bach's, always or never
    bar_form: str = "bach"
    path: Path | None = None
    message: str = ""  # what was wrong with the file, said once at start-up

    @classmethod
    def load(cls, path: Path) -> Settings:
        """The settings in ``path``; defaults for a missing file, and for every value of the wrong type.

        Any unreadable file (too big, not JSON, not an object) is ignored with a message: the
        studio always starts.
        """
        path = Path(path)
        settings = cls(path=path)
        if not path.exists():
            return settings
        try:
            if path.stat().st_size > MAX_SETTINGS_BYTES:
                raise ValueError(f"larger than {MAX_SETTINGS_BYTES // 1024} KB")
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError, RecursionError, UnicodeDecodeError) as err:
            aside = aside_path(path)
            try:  # before anything is written over it: the user may want what was in it
                path.replace(aside)
                kept = f"kept aside as {aside.name}"
            except OSError:
                kept = "left as it was"
            settings.message = (
                f"{path.name} was unreadable ({str(err)[:80]}); {kept}, and the default settings are used"
            )
            return settings
        ignored = []
        for f in fields(cls):
            if f.name in ("path", "message") or f.name not in data:
                continue
            value, expected = data[f.name], type(getattr(settings, f.name))
            if expected is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            if expected is float and type(value) is int:
                value = float(value)
            if f.name == "bar_form" and not (isinstance(value, str) and value in BAR_FORM):
                ignored.append(f.name)
            elif type(value) is expected and (expected is not int or -(10**6) < value < 10**6):
                setattr(settings, f.name, value)
            else:
                ignored.append(f.name)
        try:
            settings.rules()
        except ValueError:
            ignored += [name for name in RULE_FIELDS if getattr(settings, name) != getattr(cls, name)]
            for name in RULE_FIELDS:
                setattr(settings, name, getattr(cls, name))
        clamped = settings._clamp()
        said = [f"ignored {', '.join(ignored)} (wrong type or out of range)"] if ignored else []
        said += [f"{name} {was} is out of range: {getattr(settings, name)} is used" for name, was in clamped]
        if said:
            settings.message = f"{path.name}: " + "; ".join(said)
        return settings

    def _clamp(self) -> list[tuple[str, object]]:
        """Bring numbers a musician can set into their ranges; the (name, value given) of each."""
        ranges = {"max_voices": (1, 16), "bpm": (20, 300), "lowest": (LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH)}
        ranges["highest"] = ranges["lowest"]
        clamped = []
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not low <= value <= high:
                clamped.append((name, value))
                setattr(self, name, max(low, min(high, value)))
        return clamped

    def extra_rules(self) -> bool:
        """Whether rules beyond the four-part ones are set (a key, a range, repeats, other voices)."""
        names = [n for n in RULE_FIELDS if n != "out_of_key_weight" or self.key]  # a weight without a key does nothing
        return any(getattr(self, name) != getattr(type(self), name) for name in names)

    def reset_extra_rules(self) -> bool:
        """Put the key, range, repeats and voices back to their defaults; whether anything changed."""
        changed = self.extra_rules()
        for name in RULE_FIELDS:
            setattr(self, name, getattr(type(self), name))
        if changed:
            self.save()
        return changed

    def rules(self) -> Rules | None:
        """The sampler's rules these settings ask for (None: the grammar alone); ValueError for
        rules that contradict one another or a value out of range."""
        four_part = self.voice_rules
        rules = Rules(
            max_voices=self.max_voices if four_part else None,
            no_clash=four_part,
            no_parallels=four_part,
            lowest=self.lowest,
            highest=self.highest,
            key=self.key or None,
            out_of_key_weight=self.out_of_key_weight,
            no_repeat=self.no_repeat,
        )
        return None if rules == NO_RULES else rules

    def save(self) -> None:
        if self.path is None:
            return
        data = {k: v for k, v in asdict(self).items() if k not in ("path", "message")}
        try:
            atomic_write_text(self.path, json.dumps(data, indent=1))
        except CantorError:
            pass  # settings are a convenience: an unwritable home must not stop the music

    def soundfont_path(self) -> Path | None:
        return Path(self.soundfont) if self.soundfont else None
