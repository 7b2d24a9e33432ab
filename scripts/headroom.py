"""How much gain a test set can show over a finished run: a perfect model's paired gain, and the fewest misses to fix.

    python scripts/headroom.py RUN_FOLDER [--measure score|mAP] [--seed 0]

Near the ceiling a real gain can be too small to tell from the noise: before asking whether OTHER beats RUN on
this test set (`styleid compare RUN OTHER`), ask whether anything could. Prints the gain of a ranking with every
right gallery image first (paired 95% interval, as `styleid compare`), and the fewest of RUN's misses a model must
fix, breaking none, for a gain beyond the noise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from styleid import metrics
from styleid.errors import StyleidError
from styleid.paired_comparison import MEASURE_FORMAT, headroom, load_run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--measure", default="score", choices=list(metrics.MEASURE_DIGITS))
    ap.add_argument("--seed", type=int, default=0, help="seeds the bootstrap draws and the sets of misses tried")
    args = ap.parse_args()
    try:
        room = headroom(load_run(args.run), args.seed, args.measure)
    except StyleidError as exc:
        raise SystemExit(f"headroom: {exc}") from None
    p, fmt = room.perfect, MEASURE_FORMAT[args.measure]
    fixes = (f"fixing {room.fewest_fixes} of them (breaking none) is beyond the noise (median of {room.draws} random sets)"
             if room.fewest_fixes else "not even fixing all of them is beyond the noise")
    print(f"{args.run}: {args.measure} {p.base_value:{fmt}}; {room.misses} of {p.n_queries} queries ({p.n_people} people) a perfect ranking "
          f"improves; perfect: {p.other_value:{fmt}}, {p.gain:+{fmt}} (95% paired interval {p.gain_low:+{fmt}} to {p.gain_high:+{fmt}}); {fixes}")


if __name__ == "__main__":
    main()
