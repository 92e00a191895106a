"""Run ``recon batch`` on a Slurm cluster with dask-jobqueue: one Slurm job per Dask worker.

    python examples/slurm_cluster.py --jobs 8 &          # starts the scheduler, submits 8 worker jobs
    recon batch 'data/*.h5' --method tv --out-dir out --scheduler $(cat scheduler_address.txt)

Edit QUEUE, ACCOUNT and the resources below for your site. With ``--gpus 1`` each worker job asks Slurm for
a GPU and advertises the Dask resource ``GPU=1``, so recon sends it one GPU unit at a time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

QUEUE = "normal"  # the Slurm partition
ACCOUNT = None  # your allocation, if the site needs one


def make_cluster(cores: int = 8, memory: str = "32GB", walltime: str = "02:00:00", gpus: int = 0):
    """A SLURMCluster whose workers run recon units with ``cores`` torch threads each (one worker per job)."""
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        queue=QUEUE, account=ACCOUNT, cores=cores, processes=1, memory=memory, walltime=walltime,
        job_extra_directives=[f"--gres=gpu:{gpus}"] if gpus else [],
        worker_extra_args=["--resources", f"GPU={gpus}"] if gpus else [],
        job_script_prologue=[f"export OMP_NUM_THREADS={cores}"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--gpus", type=int, default=0)
    args = parser.parse_args()
    cluster = make_cluster(gpus=args.gpus)
    cluster.scale(jobs=args.jobs)
    Path("scheduler_address.txt").write_text(cluster.scheduler_address)
    print(f"scheduler {cluster.scheduler_address}, dashboard {cluster.dashboard_link}; Ctrl-C to stop")
    print(cluster.job_script())
    try:
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        cluster.close()


if __name__ == "__main__":
    main()
