"""``python -m oddoctor_legacy_tf1.odapi install|build|path``: install the OD API, build the model, say where."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Optional

from oddoctor_legacy_tf1 import odapi


def main(argv: Optional[list[str]] = None) -> int:
    """Run one command; exit 0 on success, 1 when the OD API is missing or a build fails."""
    parser = argparse.ArgumentParser(prog="python -m oddoctor_legacy_tf1.odapi", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help=f"pip install --no-deps --target {odapi.site_dir()} (pinned list)")
    for name, text in (("build", "build the model if it is not cached; print its directory"),
                       ("path", "print the OD API site and model directory, and whether they are ready")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--size", type=int, default=300, help="resizer min dimension (default 300)")
        p.add_argument("--seed", type=int, default=0, help="weights seed (default 0)")
    args = parser.parse_args(argv)

    try:
        if args.command == "install":
            start = time.perf_counter()
            site = odapi.install()
            print(f"installed in {site} ({time.perf_counter() - start:.0f} s)")
        elif args.command == "build":
            start = time.perf_counter()
            path = odapi.ensure_model(size=args.size, seed=args.seed)
            print(path)
            info = odapi.read_model_info(path)
            print(f"{info['nodes']} nodes, {info['bytes']} bytes, sha256 {info['sha256'][:12]}, "
                  f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
        else:
            path = odapi.model_dir(size=args.size, seed=args.seed)
            print(json.dumps({"site": str(odapi.site_dir()), "installed": odapi.is_installed(),
                              "model": str(path), "built": odapi.is_built(size=args.size, seed=args.seed)}, indent=2))
    except (odapi.OdapiUnavailable, odapi.OdapiBuildError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
