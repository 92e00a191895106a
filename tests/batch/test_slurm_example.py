"""The documented Slurm example builds a real SLURMCluster object (no Slurm runs here: nothing is submitted)."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "slurm_cluster.py"


def test_slurm_example_builds_a_cluster_with_gpu_resources():
    spec = importlib.util.spec_from_file_location("slurm_cluster", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cluster = module.make_cluster(cores=4, memory="16GB", gpus=1)
    try:
        script = cluster.job_script()
        assert "#SBATCH -p normal" in script and "#SBATCH --gres=gpu:1" in script
        assert "--resources GPU=1" in script and "export OMP_NUM_THREADS=4" in script
        assert cluster.scheduler_address.startswith("tcp://")
    finally:
        cluster.close()
