"""What object storage adds to a sweep: the same quick sweep on a local folder and on a bucket
of an S3 API server on this machine (moto's server mode, as the tests start it), side by side,
alternating, fresh storage each time (so every dense run trains), and the median of each.

    OMP_NUM_THREADS=1 python benchmarks/bench_storage.py [--repeats 3] [--study lr_wd]
                                                         [--set KEY=VALUE ...]

The default is ``lr_wd --quick`` at one seed (4 trials of 6000 steps: about 40 s on 2 cores):
trials that checkpoint, report and write dense runs as every sweep does. The S3 server runs on the
same two cores; a real one elsewhere takes that load off, and adds network latency instead.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from servers import S3Server, s3_uri  # noqa: E402  (the tests' own server helper)
from sweeps.cluster import start_local_ray  # noqa: E402
from sweeps.grid_sweep import SweepRequest, run_sweep  # noqa: E402

for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                   "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}.items():
    os.environ.setdefault(key, value)


def timed_sweep(study: str, storage: str, overrides: list[str]) -> float:
    """Wall seconds of one quick sweep of ``study`` into ``storage`` (fresh)."""
    start = time.perf_counter()
    run_sweep(SweepRequest(study=study, quick=True, storage=storage, seeds=[0],
                           overrides=overrides))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--study", default="lr_wd")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    server = S3Server()
    start_local_ray()  # one Ray for every sweep, as a user's session would have
    times: dict[str, list[float]] = {"local folder": [], "S3 bucket": []}
    try:
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                times["local folder"].append(timed_sweep(args.study, folder, args.overrides))
            uri = s3_uri(server.endpoint, f"bench-{repeat}")
            times["S3 bucket"].append(timed_sweep(args.study, uri, args.overrides))
            print(f"repeat {repeat + 1}: local {times['local folder'][-1]:.1f} s, "
                  f"S3 {times['S3 bucket'][-1]:.1f} s", flush=True)
    finally:
        server.stop()
    local, s3 = (statistics.median(times[k]) for k in ("local folder", "S3 bucket"))
    print(f"{args.study} --quick, seed 0, {args.repeats} repeats: median local folder "
          f"{local:.1f} s, S3 bucket {s3:.1f} s: the bucket adds {s3 - local:+.1f} s "
          f"({s3 / local:.2f}x)")


if __name__ == "__main__":
    main()
