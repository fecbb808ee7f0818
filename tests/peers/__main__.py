"""`python -m tests.peers provision [PEER ...] [--force]`, `python -m tests.peers status`, and
`python -m tests.peers cluster up|down` (a live single-node cluster to poke at; needs root)."""

from __future__ import annotations

import argparse
import sys

from tests.peers import provision


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.peers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    prov = commands.add_parser("provision", help="obtain and cache the test peers (cached ones are skipped)")
    prov.add_argument("peers", nargs="*", metavar="PEER", help=f"subset of: {', '.join(provision.PEERS)}")
    prov.add_argument("--force", action="store_true", help="rebuild even when the cache is current")
    commands.add_parser("status", help="show which peers are provisioned")
    cluster = commands.add_parser("cluster", help="run the single-node test cluster until Ctrl-C (up), "
                                                  "or remove what an interrupted one left (down)")
    cluster.add_argument("action", choices=("up", "down"))
    args = parser.parse_args(argv)
    if args.command == "provision":
        return provision.provision(args.peers, force=args.force)
    if args.command == "cluster":
        from tests.peers import cluster_cli  # imports the Kubernetes client: only when asked

        return cluster_cli.up() if args.action == "up" else cluster_cli.down()
    return provision.status()


if __name__ == "__main__":
    sys.exit(main())
