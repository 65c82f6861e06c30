"""Pictures the bot sends, drawn with Pillow: text in Latin and Devanagari, shaped correctly.

Hindi needs complex-text shaping (conjuncts like क्ष and त्र, the ि matra drawn before its
consonant, the reph of र्). Pillow shapes with HarfBuzz through libraqm (bundled in its wheels);
without it, Devanagari would be drawn letter by letter, which reads as broken Hindi, so
``require_shaping`` refuses to draw instead.

The fonts are vendored in bot/fonts (SIL Open Font License, see OFL.txt): Noto Sans for Latin,
Noto Sans Devanagari for Hindi, and Noto Sans for the other Indian scripts an owner's name may be
written in (Tamil, Bengali, Gurmukhi, Gujarati, Telugu, Kannada, Malayalam, Odia). A line that
mixes scripts ("IEC का रजिस्ट्रेशन") is cut into runs, each drawn in its own font on one baseline.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, features

FONTS = Path(__file__).parent / "fonts"
# The Indian scripts an owner may write a name in, by Unicode block; Latin is the rest. Devanagari
# has a bold face; the others are drawn in their regular face, bold or not.
SCRIPTS = (
    (0x0900, 0x097F, "Devanagari"), (0x0980, 0x09FF, "Bengali"), (0x0A00, 0x0A7F, "Gurmukhi"),
    (0x0A80, 0x0AFF, "Gujarati"), (0x0B00, 0x0B7F, "Oriya"), (0x0B80, 0x0BFF, "Tamil"),
    (0x0C00, 0x0C7F, "Telugu"), (0x0C80, 0x0CFF, "Kannada"), (0x0D00, 0x0D7F, "Malayalam"),
)
# Marks every script shares (spaces, digits, punctuation) and joiners stay with the run they are in.
_NEUTRAL = set(" \u00a0\u200c\u200d.,:;!?()-–—'\"‘’“”/%+×…•→") | set("0123456789")

INK = (33, 37, 41)
MUTED = (90, 98, 106)
ACCENT = (19, 99, 74)
PAPER = (255, 253, 246)


class ShapingUnavailable(RuntimeError):
    """Pillow was built without libraqm: Devanagari cannot be shaped."""


def require_shaping() -> None:
    """Raise unless Pillow can shape complex scripts."""
    if not features.check("raqm"):
        raise ShapingUnavailable(
            "Pillow cannot shape Hindi here: its libraqm needs FriBiDi from the system "
            "(Debian/Ubuntu: apt-get install libfribidi0); certificates, diagrams and charts wait until then"
        )


@lru_cache(maxsize=64)
def font(size: int, bold: bool = False, script: str = "") -> ImageFont.FreeTypeFont:
    """The vendored font for one script ("" for Latin), weight and size."""
    weight = "Bold" if bold and script in ("", "Devanagari") else "Regular"
    return ImageFont.truetype(str(FONTS / f"NotoSans{script}-{weight}.ttf"), size, layout_engine=ImageFont.Layout.RAQM)


def script_of(ch: str) -> str:
    """The Indian script ``ch`` belongs to, or "" (Latin, and everything else)."""
    code = ord(ch)
    for low, high, name in SCRIPTS:
        if low <= code <= high:
            return name
    return ""


def runs(text: str) -> list[tuple[str, str]]:
    """``text`` cut into ``(script, chunk)`` runs; digits, spaces and punctuation join the run
    they are in (the first run takes any that lead)."""
    out: list[tuple[str, str]] = []
    for ch in text:
        if ch in _NEUTRAL and out:
            out[-1] = (out[-1][0], out[-1][1] + ch)
            continue
        script = script_of(ch) if ch not in _NEUTRAL else ""
        if out and out[-1][0] == script:
            out[-1] = (script, out[-1][1] + ch)
        else:
            out.append((script, ch))
    return out


@dataclass
class Canvas:
    """An image with a pen that writes mixed-script lines on a baseline."""

    image: Image.Image

    @classmethod
    def new(cls, width: int, height: int, background=PAPER) -> Canvas:
        require_shaping()
        return cls(Image.new("RGB", (width, height), background))

    @property
    def draw(self) -> ImageDraw.ImageDraw:
        return ImageDraw.Draw(self.image)

    def width_of(self, text: str, size: int, bold: bool = False) -> float:
        draw = self.draw
        return sum(draw.textlength(chunk, font=font(size, bold, script)) for script, chunk in runs(text))

    def text(self, x: float, baseline: float, text: str, size: int, *, bold: bool = False, fill=INK, align: str = "left") -> float:
        """Write one line with its baseline at ``baseline``; returns its width."""
        width = self.width_of(text, size, bold)
        if align == "center":
            x -= width / 2
        elif align == "right":
            x -= width
        draw = self.draw
        for script, chunk in runs(text):
            f = font(size, bold, script)
            draw.text((x, baseline), chunk, font=f, fill=fill, anchor="ls")
            x += draw.textlength(chunk, font=f)
        return width

    def wrap(self, text: str, size: int, max_width: float, bold: bool = False) -> list[str]:
        """``text`` broken into lines no wider than ``max_width`` (at spaces)."""
        lines: list[str] = []
        for paragraph in text.split("\n"):
            line = ""
            for word in paragraph.split(" "):
                trial = f"{line} {word}" if line else word
                if line and self.width_of(trial, size, bold) > max_width:
                    lines.append(line)
                    line = word
                else:
                    line = trial
            lines.append(line)
        return lines

    def paragraph(self, x: float, baseline: float, text: str, size: int, max_width: float, *, bold: bool = False,
                  fill=INK, align: str = "left", leading: float = 1.45) -> float:
        """Write wrapped lines from ``baseline`` down; returns the baseline after the last line."""
        for line in self.wrap(text, size, max_width, bold):
            self.text(x, baseline, line, size, bold=bold, fill=fill, align=align)
            baseline += size * leading
        return baseline

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()
