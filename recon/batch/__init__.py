"""``recon batch``: many files (or slabs of one big volume) reconstructed on a process pool or a Dask cluster.

inputs.py expands what the user gave into files; units.py plans the work units and runs one (in a worker);
executors.py hides the local pool and dask.distributed behind one interface; slabs.py merges slab outputs;
runner.py drives a batch (resume, retries, interrupts); summary.py writes the table, JSON and CSV.
"""
