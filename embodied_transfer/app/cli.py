"""``embodied-transfer``: one entry point, one module per command group.

Each group module under :mod:`embodied_transfer.app` adds its parsers with ``add_parsers``
and sets ``run`` on them; this module only dispatches. Errors of the package's own types
(:class:`~embodied_transfer.core.errors.EmbodiedTransferError`) end the command with a
one-line message and exit status 2; Ctrl-C ends it cleanly with status 0.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from embodied_transfer.app import (bag_commands, editing_commands, graph_commands,
                                   grasp_commands, squat_commands, tactile_commands)
from embodied_transfer.core.errors import EmbodiedTransferError
from embodied_transfer.core.runtime import configure_process

#: The command groups, in the order ``--help`` lists them.
GROUPS = (graph_commands, bag_commands, squat_commands, grasp_commands, tactile_commands,
          editing_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embodied-transfer",
                                     description="Move skills and signals between domains "
                                                 "(ROS 2): graphs, bags, squat, grasp, "
                                                 "tactile and editing commands.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_process()
    try:
        return args.run(args)
    except EmbodiedTransferError as exc:
        print(f"embodied-transfer: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
