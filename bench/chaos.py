"""The long chaos drill of issue 7: SIGKILL the bot at random moments while 200 owners onboard, learn and qualify.

    .venv/bin/python bench/chaos.py                      # 200 owners, at least 20 SIGKILLs (about 2 minutes)
    .venv/bin/python bench/chaos.py --owners 500 --kills 40 --keep /tmp/chaos

The bot runs in its own process against a Bot API stand-in served here, and is SIGKILLed after
a random uptime (or within 80 ms of a lead-making answer or an admin's Confirm) and started
again, until at least ``--kills`` kills and the owners are through. Meanwhile the owners go
through onboarding and the three core modules, four staff chats of three partner startups
(linked with ``saathi startups invite`` + ``/start join_…``) get lead cards and accept some, two
broadcasts go out (``saathi broadcast announce … --yes`` on the bot's database, and the admin's
/broadcast wizard) and the owners who went quiet are reminded. tests/chaos_support.py has the
driver and the checks (tests/test_chaos.py runs a short drill in ``make test``). Printed: the
machine, what was done and what arrived, every problem found. Exit status 1 when there is one;
``--keep`` keeps the database and the bot's log (all its processes) for a look afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine  # noqa: E402
from tests.chaos_support import Drill, report, run_drill  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--owners", type=int, default=200)
    parser.add_argument("--kills", type=int, default=20, help="at least this many SIGKILLs")
    parser.add_argument("--uptime", type=float, nargs=2, default=(1.0, 8.0), metavar=("MIN", "MAX"),
                        help="seconds a bot process lives before its SIGKILL (uniform)")
    parser.add_argument("--patience", type=float, default=4.0, help="seconds an owner waits for an answer before /start")
    parser.add_argument("--think", type=float, default=0.8, help="mean seconds an owner pauses before answering")
    parser.add_argument("--rate", type=float, default=25.0, help="BROADCAST_RATE")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", type=Path, help="keep the database and the bot's log in this folder")
    args = parser.parse_args()
    drill = Drill(
        owners=args.owners, kills=args.kills, uptime=tuple(args.uptime), patience=args.patience, think=args.think,
        spread=10.0, broadcasts=2, rate=args.rate, seed=args.seed, deadline=1800.0,
    )
    print(f"Machine: {machine()}")
    print(f"Chaos drill: {drill.owners} owners, at least {drill.kills} SIGKILLs after {drill.uptime[0]:g}–{drill.uptime[1]:g} s "
          f"of uptime, patience {drill.patience:g} s, think {drill.think:g} s, seed {drill.seed}")
    with tempfile.TemporaryDirectory(prefix="saathi-chaos-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for old in work.glob("bot.*"):
            old.unlink()
        record = asyncio.run(run_drill(drill, work))
    print("\n".join(report(record)))
    for line in record.problems[:40]:
        print(f"  PROBLEM: {line}")
    for line in record.bot_errors[:20]:
        print(f"  bot log: {line}")
    return 1 if record.problems else 0


if __name__ == "__main__":
    sys.exit(main())
