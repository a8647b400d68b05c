"""Task switching: `tasks` tasks each looping `await asyncio.sleep(0)` until
`n` switches have been made in total. sleep(0) yields to the loop once, so
each switch is one Task step scheduled through call_soon."""
import asyncio


def prepare(loop, n, env, tasks=2):
    left = n
    sleep = asyncio.sleep

    async def worker():
        nonlocal left
        while left > 0:
            left -= 1
            await sleep(0)

    async def main():
        await asyncio.gather(*[worker() for _ in range(tasks)])

    def go():
        loop.run_until_complete(main())
        return n - left

    def cleanup():
        pass

    return go, cleanup
