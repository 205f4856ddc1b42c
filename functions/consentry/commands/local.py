"""`consentry local serve`: run the local embedded runtime as servers on 127.0.0.1."""

import argparse
import tempfile
from pathlib import Path
from typing import Any

from consentry.commands import CommandError


def register(subparsers: Any) -> None:
    local = subparsers.add_parser("local", help="the local embedded runtime (no Docker, no AWS account)")
    actions = local.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser("serve", help="serve the API and an AWS emulator on 127.0.0.1")
    serve.add_argument("--port", type=int, default=8787, help="API port (default 8787)")
    serve.add_argument("--moto-port", type=int, default=5055, help="AWS emulator port (default 5055)")
    serve.add_argument("--workdir", type=Path, default=None, help="where the simulator log goes")
    serve.add_argument("--speed", type=float, default=1.0, help="virtual seconds per real second (default 1)")
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        from consentry_local.server import serve
    except ImportError as exc:
        raise CommandError(f"the local runtime is not installed ({exc}); install consentry[local]") from exc
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="consentry-local-"))
    serve(port=args.port, moto_port=args.moto_port, workdir=workdir, speed=args.speed)
    return 0
