"""`make bench`: run every benchmark, print the figures and save them to bench/results/."""

from __future__ import annotations

import asyncio
import json
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    announce,
    api,
    chart,
    delivery_bench,
    digest_bench,
    grades_bench,
    import_bench,
    latency_bench,
    paid_bench,
    pg_import_bench,
    rss_bench,
)

RESULTS = Path(__file__).with_name("results")
BENCHES = {
    "import": import_bench.run,
    "pg_import": pg_import_bench.run,
    "delivery": delivery_bench.run,
    "announce": announce.run,
    "latency": latency_bench.run,
    "digest": digest_bench.run,
    "paid": paid_bench.run,
    "paid-pg": paid_bench.run_postgresql,
    "grades": grades_bench.run,
    "rss": rss_bench.run,
    "api": api.run,
    "api-pg": api.run_postgresql,
    "chart": chart.run,
    "digest-city": digest_bench.run_city,  # 2.5 million accounts: only when asked for
}
DEFAULT = [name for name in BENCHES if name != "digest-city"]


async def main(names: list[str]) -> dict[str, object]:
    report: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_implementation()}"
                   f" {platform.python_version()}",
    }
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"running {name}…", file=sys.stderr, flush=True)
            report[name] = await BENCHES[name](Path(tmp))
            print(json.dumps({name: report[name]}, ensure_ascii=False), flush=True)
    return report


if __name__ == "__main__":
    chosen = sys.argv[1:] or DEFAULT
    unknown = [n for n in chosen if n not in BENCHES]
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}")
    result = asyncio.run(main(chosen))
    RESULTS.mkdir(exist_ok=True)
    latest = RESULTS / "latest.json"
    # Running some benchmarks keeps the others' last figures.
    merged = json.loads(latest.read_text()) if latest.exists() else {}
    merged.update(result)
    latest.write_text(json.dumps(merged, ensure_ascii=False, indent=2) + "\n")
