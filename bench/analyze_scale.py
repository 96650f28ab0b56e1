"""Does `invoke analyze` grow linearly with its input?

Generates manifest files of 1k, 2k, 4k, 8k and 16k documents shaped like the scenarios' own
(manifests/: ServiceEntries, Gateways, VirtualServices, DestinationRules, an EnvoyFilter, a gateway
Deployment and Service...), each copy in a namespace of its own with host names of its own, times
the analyzer on each file (reading and parsing included, as `invoke analyze FILE` does) and
prints, as its last line, the ratio of the 16k time to the 1k time. Linear is about 16; target:
at most 24.

    python bench/analyze_scale.py [--runs 1]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.analyzer import analyze_paths  # noqa: E402

SIZES = (1000, 2000, 4000, 8000, 16000)
TARGET = 24.0
# The installed objects egress-sni-broken re-declares on purpose: one copy is a lesson, thousands
# would only repeat it; every other scenario document is copied.
SKIP = {("Service", "istio-system"), ("Deployment", "istio-system")}
_DOMAINS = re.compile(r"\b(wikipedia|cnn|google)\.(org|com)\b")


def templates() -> list[str]:
    docs = []
    for path in sorted((REPO / "manifests").glob("egress-*/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and (doc.get("kind"), (doc.get("metadata") or {}).get("namespace")) not in SKIP:
                docs.append(yaml.safe_dump(doc, sort_keys=False))
    return docs


def copy_of(template: str, index: int) -> str:
    """The template in namespace bench-N, with host names and gateway names of its own."""
    ns = f"bench-{index}"
    text = _DOMAINS.sub(lambda m: f"{m[1]}{index}.{m[2]}", template)
    text = re.sub(r"\bnamespace: (default|istio-egress|istio-system)\b", f"namespace: {ns}", text)
    text = text.replace("istio-egress.svc", f"{ns}.svc").replace("istio-egress/", f"{ns}/")
    return text.replace("name: istio-egress\n", f"name: {ns}\n")


def generate(size: int, folder: Path) -> Path:
    base = templates()
    parts, index = [], 0
    while len(parts) < size:
        parts.append(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench-{index}\n")
        parts += [copy_of(t, index) for t in base][: size - len(parts)]
        index += 1
    path = folder / f"analyze-{size}.yaml"
    path.write_text("---\n".join(parts), encoding="utf-8")
    return path


def timed(path: Path, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        analyze_paths([path])
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="best of N runs per size")
    args = parser.parse_args()
    times: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            path = generate(size, Path(tmp))
            times[size] = timed(path, args.runs)
            mb = path.stat().st_size / 1e6
            print(f"{size:>6} documents ({mb:.1f} MB): {times[size]:.2f} s")
    ratio = times[SIZES[-1]] / times[SIZES[0]]
    verdict = "ok" if ratio <= TARGET else f"above the target {TARGET:g}"
    print(f"16k/1k ratio ({verdict}): {ratio:.1f}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
