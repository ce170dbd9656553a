"""One model's figures of the custom-keyword benchmark, from the JSON that run.sh wrote.

    python benchmarks/custom_keywords/summary.py OUT NAME     (NAME: real, text500 or text)

Per word: clip accuracy of the cascade and of stage 2 alone on the real test recordings
(`kws eval --json`); per operating point on the test stream (`kws stream eval --json`): hits per
word, false accepts per hour (total and by source), the best hit rate at <= 10 false accepts
per hour on the DET curve, stage-2 duty and the nRF52840 energy ratio against stage 2 always on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

WORDS = ("alexa", "snowboy")


def clips(report: dict) -> str:
    parts = [f"{w} {report['per_label'][w]['recall']:.1%} ({report['per_label'][w]['correct']}/{report['per_label'][w]['n']}; "
             f"stage 2 alone {report['per_label'][w]['stage2_recall']:.1%})" for w in WORDS]
    return f"test clips: {', '.join(parts)}; tau {report.get('tau', float('nan')):.3f}"


def stream(point: str, report: dict) -> str:
    total = report["total"]
    hits = ", ".join(f"{w} {report['per_keyword'][w]['hits']}/{report['per_keyword'][w]['keywords']}" for w in WORDS)
    sources = ", ".join(f"{name} {s['false_accepts_per_hour']:.0f}" for name, s in sorted(report["by_source"].items())
                        if name != "keywords")
    at10 = report.get("hit_rate_at_10_fa_per_hour")
    nrf = next((e["ratio"] for e in report["energy"] if e["profile"] == "nrf52840"), float("nan"))
    return (f"test stream `{point}`: hits {total['hit_rate']:.3f} ({hits}) at {total['false_accepts_per_hour']:.0f} FA/h "
            f"(by source: {sources}); best hits at <= 10 FA/h {'not reached' if at10 is None else f'{at10:.3f}'}; "
            f"stage 2 on {total['stage2_duty']:.1%} of steps; nRF52840 ratio {nrf:.3f}")


def main(out: Path, name: str) -> None:
    print(f"== {name}")
    print(clips(json.loads((out / f"{name}_eval.json").read_text())))
    for point in ("balanced", "low"):
        path = out / f"{name}_stream_{point}.json"
        if path.is_file():
            print(stream(point, json.loads(path.read_text())))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
