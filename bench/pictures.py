"""How long the pictures take to draw: the certificate, a lesson diagram, the funnel chart.

    .venv/bin/python bench/pictures.py [--repeat 20]

Prints milliseconds per picture (median of the repeats) and the PNG size, in both languages.
A diagram is drawn once per language and then served from memory; the certificate and the chart
are drawn every time (they carry names and counts).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from bot.content import load_content  # noqa: E402
from bot.core.funnel import Stage  # noqa: E402
from bot.diagrams import DiagramBook  # noqa: E402
from bot.i18n import Catalogs  # noqa: E402
from bot.services.certificates import CertificateService, new_code  # noqa: E402
from bot.services.stats import StatsService  # noqa: E402
from bot.storage.certificates import Certificate  # noqa: E402


def timed(make, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        size = len(make())
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    content, texts = load_content(), Catalogs.load()
    certificates = CertificateService.__new__(CertificateService)  # drawing needs only content and texts
    certificates.content, certificates.texts = content, texts
    stats = StatsService.__new__(StatsService)
    stats.content, stats.texts = content, texts
    funnel = [Stage("first_message", "First message", 1000), Stage("consent", "Gave consent", 800),
              Stage("onboarded", "Confirmed the profile", 700), Stage("lead", "Qualified (lead)", 400)]
    print(f"machine: {machine()}")
    for lang, owner, business in (("en", "Asha Devi", "Asha Brass Works"), ("hi", "रमेश कुमार", "मुरादाबाद ब्रास वर्क्स")):
        c = Certificate(new_code(), lang, owner, business, tuple(m.id for m in content.modules), int(time.time()))
        ms, size = timed(lambda: certificates.draw(c).png, args.repeat)
        print(f"certificate [{lang}]: {ms:6.1f} ms, {size / 1024:5.1f} KB")
        for ref in ("pricing.fob_cfr_cif", "shipping.forwarder_broker"):
            first_ms, size = timed(lambda: DiagramBook(content, texts).png(ref, lang), 3)
            book = DiagramBook(content, texts)
            book.png(ref, lang)
            cached_ms, _ = timed(lambda: book.png(ref, lang), args.repeat)
            print(f"diagram {ref} [{lang}]: first {first_ms:6.1f} ms, then {cached_ms * 1000:5.1f} µs, {size / 1024:5.1f} KB")
        ms, size = timed(lambda: stats.chart(funnel, "all owners", lang), args.repeat)
        print(f"funnel chart [{lang}]: {ms:6.1f} ms, {size / 1024:5.1f} KB")


if __name__ == "__main__":
    main()
