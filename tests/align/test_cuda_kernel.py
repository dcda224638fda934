"""The benchmark's CUDA Viterbi kernel (experiments/viterbi_cuda_kernel.py) against viterbi_align, on
numba's CPU simulator. Skipped where numba's CUDA target is not installed (it is not a dependency)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_cuda_kernel_on_the_simulator_gives_viterbi_align_positions():
    pytest.importorskip("numba")
    pytest.importorskip("numba.cuda")
    env = {
        **os.environ,
        "NUMBA_ENABLE_CUDASIM": "1",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "viterbi_cuda_kernel.py"), "--cases", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "positions identical" in done.stdout
