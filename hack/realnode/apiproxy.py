"""A TCP relay from the bridge to the API server: the way in-cluster clients (the operator's pod) reach it.

Why: localcluster's API server listens on 127.0.0.1 only, which a pod cannot reach, and Endpoints
may not hold a loopback address. So the `kubernetes` Service gets an EndpointSlice naming the bridge
address (node.py), and this relay, listening there, copies bytes to the API server on loopback. TLS
passes through untouched: the client talks to 10.0.0.1, which the API server's certificate names.

Usage: apiproxy.py --listen 10.85.0.1:PORT --target 127.0.0.1:PORT (started and stopped by node.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def _serve(listen: tuple[str, int], target: tuple[str, int]) -> None:
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(relay, *listen)
    print(f"apiproxy: relaying {listen[0]}:{listen[1]} -> {target[0]}:{target[1]}", flush=True)
    async with server:
        await server.serve_forever()


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_addr, required=True)
    parser.add_argument("--target", type=_addr, required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.listen, args.target))


if __name__ == "__main__":
    main()
