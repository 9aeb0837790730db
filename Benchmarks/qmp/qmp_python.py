# The qemu.qmp peer for Benchmarks/qmp.sh: N sequential query-status round trips on one connection.
import asyncio
import sys
import time

from qemu.qmp import QMPClient


async def main(socket_path: str, count: int) -> None:
    client = QMPClient("qmp-bench")
    await client.connect(socket_path)
    for _ in range(200):
        await client.execute("query-status")
    start = time.perf_counter()
    for _ in range(count):
        await client.execute("query-status")
    elapsed = time.perf_counter() - start
    await client.disconnect()
    print(f"{count / elapsed:.0f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
