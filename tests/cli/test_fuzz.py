"""Property-based fuzzing of the CLI: mutated files of the six measurement specs (tests/cli/fuzzing.py) through
``recon.cli.main`` in this process, and a few through the ``recon`` console script. Every run must exit 0
with a finite output, or 2 with one line; never 1, never a traceback, no file left behind, the input
unchanged; ``recon info`` exits 0 or 2.

A seeded generator makes every run the same cases; by default each mutation meets each spec once (96 cases,
about a minute on a quiet 2-core machine). ``RECON_FUZZ_N=1000`` runs more (cycling through the pairs with
fresh random draws); scripts/fuzz_cli.py runs 1000 and prints the table of outcomes.
"""

import os

import numpy as np
import pytest

from tests.cli.fuzzing import MUTATIONS, SPECS, check_case, make_case

PAIRS = len(SPECS) * len(MUTATIONS)
N_CASES = int(os.environ.get("RECON_FUZZ_N", str(PAIRS)))
SUBPROCESS_CASES = (PAIRS + 7, PAIRS + 40, PAIRS + 77)  # three other mutations, three other specs
SEED = 21


def _case_mutation(i: int) -> str:
    """Case i's mutation: spec i % 6 meets mutation i // 6 (mod 16), so the first 96 cases hold every pair."""
    return list(MUTATIONS)[(i // len(SPECS)) % len(MUTATIONS)]


def test_the_cases_hold_every_spec_and_mutation_pair():
    if N_CASES < PAIRS:
        pytest.skip(f"RECON_FUZZ_N={N_CASES} is below the {PAIRS} pairs")
    assert {(SPECS[i % len(SPECS)], _case_mutation(i)) for i in range(N_CASES)} == {
        (spec, mutation) for spec in SPECS for mutation in MUTATIONS}


def _broken(i: int, folder, via_subprocess: bool) -> list[str]:
    spec = SPECS[i % len(SPECS)]
    case = make_case(spec, np.random.default_rng([SEED, i]), folder / f"case{i}", mutation=_case_mutation(i))
    result = check_case(case, via_subprocess)
    return [f"case {i} {spec} {case.mutation} ({case.detail}) {case.method}: {'; '.join(result['broken'])}: "
            f"{result['stderr']}"] if result["broken"] else []


def test_mutated_files_through_main(tmp_path):
    broken = [line for i in range(N_CASES) for line in _broken(i, tmp_path, via_subprocess=False)]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("i", SUBPROCESS_CASES)
@pytest.mark.slow
def test_mutated_files_through_the_console_script(tmp_path, i):
    assert not _broken(i, tmp_path, via_subprocess=True)
