"""``python -m dataflow_operator.spec.generate [--check] [ROOT]``: writes the CRD and
docs/reference.md from the typed API objects; ``--check`` only reports which would change."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .crd_schema import CRD_PATH, crd_yaml
from .reference import REFERENCE_PATH, reference_markdown

COMMAND = "python -m dataflow_operator.spec.generate"


def generated() -> dict[str, str]:
    """Repository path → the text it should hold."""
    return {CRD_PATH: crd_yaml(), REFERENCE_PATH: reference_markdown()}


def stale(root: Path) -> list[str]:
    """The generated files under ``root`` that differ from what the types give."""
    return [path for path, text in generated().items()
            if not (root / path).exists() or (root / path).read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is out of date")
    parser.add_argument("root", nargs="?", default=".", type=Path, help="the repository (default: .)")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.root)
        for path in outdated:
            print(f"{path} is out of date; run {COMMAND}")
        return 1 if outdated else 0
    for path, text in generated().items():
        (args.root / path).write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
