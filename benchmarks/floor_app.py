"""The floor of `make bench-floor`: the least a FastAPI JSON endpoint costs under allpath's uvicorn settings.

One route, `GET /floor`, answering a small JSON object; served by uvicorn exactly as `allpath serve`
serves allpath (uvloop and httptools when installed, the same bounded HTTP protocol, warning log
level, one worker). Whatever allpath spends above this per request is allpath's own work.

    python benchmarks/floor_app.py --port 8001
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

from allpath.api.limits import bounded_http_protocol
from allpath.settings import HttpSettings

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/floor-sync")
def floor_sync() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/floor")
async def floor() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    limits = bounded_http_protocol(HttpSettings().max_header_bytes)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", **limits)


if __name__ == "__main__":
    main()
