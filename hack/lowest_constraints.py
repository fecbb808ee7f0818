"""Print pip constraints pinning every dependency declared in setup.cfg to its lower bound.

``tox -e lowest`` installs the package with these constraints and runs the unit tests, so a lower
bound we declare is one we have tested. Each requirement must carry a ``>=`` bound: one without it
has no lowest version to test, which is reported as an error rather than silently skipped.

Usage: ``python hack/lowest_constraints.py [setup.cfg] [--extra NAME ...] [--output constraints.txt]``
"""

from __future__ import annotations

import argparse
import configparser
import re
import sys
from dataclasses import dataclass
from pathlib import Path

# name, optional [extras], then the specifier list, e.g. "psycopg[binary]>=3.1".
_REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[(?P<extras>[^\]]*)\])?\s*(?P<spec>.*)$")
_LOWER_BOUND = re.compile(r"(?:^|,)\s*>=\s*(?P<version>[^,\s;]+)")


class ConstraintError(ValueError):
    """A requirement in setup.cfg that has no lower bound to pin."""


@dataclass(frozen=True)
class LowerBound:
    name: str
    version: str

    def constraint(self) -> str:
        return f"{self.name}=={self.version}"


def lower_bound(requirement: str) -> LowerBound:
    match = _REQUIREMENT.match(requirement.strip())
    if match is None:
        raise ConstraintError(f"cannot parse requirement {requirement!r}")
    bound = _LOWER_BOUND.search(match["spec"].split(";", 1)[0])
    if bound is None:
        raise ConstraintError(f"{requirement!r}: no '>=' lower bound to test")
    return LowerBound(match["name"], bound["version"])


def declared_requirements(setup_cfg: Path, extras: list[str]) -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    sections = [parser.get("options", "install_requires")]
    sections += [parser.get("options.extras_require", extra) for extra in extras]
    return [line.strip() for text in sections for line in text.splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setup_cfg", nargs="?", type=Path, default=Path("setup.cfg"))
    parser.add_argument("--extra", action="append", default=[], help="also pin this extra's requirements")
    parser.add_argument("--output", type=Path, default=None, help="write here instead of stdout")
    args = parser.parse_args(argv)
    try:
        bounds = [lower_bound(req) for req in declared_requirements(args.setup_cfg, args.extra)]
    except (ConstraintError, configparser.Error) as exc:
        print(f"{args.setup_cfg}: {exc}", file=sys.stderr)
        return 1
    text = "".join(f"{bound.constraint()}\n" for bound in bounds)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
