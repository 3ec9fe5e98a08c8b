"""`python -m ml_assets.serving` (`make serve`): one uvicorn worker on 127.0.0.1:8000."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from ml_assets.serving.app import create_app
from ml_assets.serving.config import ServeSettings, UnsafeConfig
from ml_assets.serving.state import ServingState


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="default 127.0.0.1 (ML_ASSETS_SERVE_HOST)")
    parser.add_argument("--port", type=int, help="default 8000 (ML_ASSETS_SERVE_PORT)")
    parser.add_argument("--poll-seconds", type=float, help="registry poll interval (default 5)")
    args = parser.parse_args(argv)
    try:
        config = ServeSettings.from_env(
            host=args.host, port=args.port, poll_seconds=args.poll_seconds
        )
    except (UnsafeConfig, ValueError) as exc:
        sys.stderr.write(f"refusing to start: {exc}\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(ServingState.from_project(), config)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        workers=1,
        log_level="info",
        access_log=config.access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
