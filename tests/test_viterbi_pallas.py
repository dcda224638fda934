"""The Pallas Viterbi kernel against the scan and brute force (interpreted on CPU, compiled on a GPU), and
its lowering to Triton for NVIDIA GPUs (done on CPU too: no GPU is needed to lower, only to run)."""

import contextlib
import io
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxalign import viterbi_align
from jaxalign.align import viterbi_align_pallas
from tests.reference import brute_viterbi, lengths
from tests.test_align import random_batch


def assert_same_alignment(expected, got):
    for name, want, have in zip(expected._fields, expected, got):
        np.testing.assert_array_equal(np.asarray(have), np.asarray(want), err_msg=name)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("tie_prone", [False, True])
def test_pallas_matches_brute_force_and_the_scan(seed, tie_prone):
    """Padding, junk labels in padded rows, L=1, L=T, T=1 and L>T rows (random_batch): the earliest-moving
    best path of brute force, and the scan's result bit for bit."""
    batch = random_batch(seed, tie_prone=tie_prone)
    ali = viterbi_align_pallas(*batch)
    assert_same_alignment(viterbi_align(*batch), ali)
    positions = np.asarray(ali.positions)
    for b, (best, winners) in enumerate(brute_viterbi(*batch)):
        if winners:
            t_b = int(lengths(batch[1])[b])
            np.testing.assert_array_equal(positions[b, :t_b], max(winners, key=lambda r: tuple(r)))
            np.testing.assert_allclose(float(ali.score[b]), best, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows", [31, 32, 33, 70])
def test_pallas_matches_the_scan_across_lane_widths(rows):
    """Rows on both sides of a power of two (the kernel's lane width W is the rows rounded up, >= 32)."""
    batch = random_batch(rows, batch=5, frames=2 * rows + 7, rows=rows, classes=4, tie_prone=rows % 2 == 0)
    assert_same_alignment(viterbi_align(*batch), viterbi_align_pallas(*batch))


def test_pallas_on_hostile_inputs_and_bfloat16():
    """NaN and -inf log-probs (a whole sequence at -inf still gets a valid path), bfloat16 input."""
    log_probs, logit_pad, labels, label_pad = random_batch(3)
    log_probs = log_probs.copy()
    log_probs[0] = -np.inf
    log_probs[1, 2] = np.nan
    log_probs[4, ::2, 0] = -np.inf
    for lp in (log_probs, jnp.asarray(log_probs, jnp.bfloat16)):
        ali = viterbi_align_pallas(lp, logit_pad, labels, label_pad)
        assert_same_alignment(viterbi_align(lp, logit_pad, labels, label_pad), ali)
        assert not np.any(np.isnan(np.asarray(ali.score)))


def test_pallas_without_rows_or_frames_and_with_named_errors():
    log_probs, logit_pad, labels, label_pad = random_batch(0)
    ali = viterbi_align_pallas(log_probs, logit_pad, labels[:, :0], label_pad[:, :0])
    assert not np.any(ali.feasible) and np.all(np.asarray(ali.positions) == -1)
    huge = jax.ShapeDtypeStruct((2**14, 2**12, 40), jnp.float32)  # 2^26 cells x W=32: past int32 offsets
    with pytest.raises(ValueError, match="split the batch"):
        jax.eval_shape(viterbi_align_pallas, huge, jax.ShapeDtypeStruct(huge.shape[:2], jnp.float32),
                       jax.ShapeDtypeStruct((2**14, 5), jnp.int32), jax.ShapeDtypeStruct((2**14, 5), jnp.float32))
    with pytest.raises(TypeError, match="labels"):
        viterbi_align_pallas(log_probs, logit_pad, labels.astype(np.float32), label_pad)


def lowered_for_gpu(batch, capture_triton_ir=False):
    """Lowers the (non-interpreted) kernel for CUDA on this CPU machine: (StableHLO text, Triton IR text)."""
    from jax.experimental import pallas as pl

    import jaxalign.align.viterbi_pallas as module

    printed = io.StringIO()
    original = pl.pallas_call
    with contextlib.ExitStack() as stack:
        if capture_triton_ir:  # pallas_call(debug=True) prints the Triton module it built
            stack.enter_context(pytest.MonkeyPatch.context()).setattr(
                module.pl, "pallas_call", lambda *a, **k: original(*a, **{**k, "debug": True}))
            stack.enter_context(contextlib.redirect_stdout(printed))
        try:
            lowered = jax.jit(lambda *a: viterbi_align_pallas(*a, interpret=False)).trace(*batch).lower(lowering_platforms=("cuda",))
        except RuntimeError as error:  # newer jaxlibs compile to PTX while lowering, which needs the CUDA plugin
            if "Triton compilation handler" in str(error):
                pytest.skip(f"this jaxlib compiles Triton while lowering and has no CUDA plugin here: {error}")
            raise
    triton_ir = printed.getvalue().split("The Triton module for pallas_call", 1)[-1].split(":\n", 1)[-1]
    return lowered.as_text(), triton_ir


def test_pallas_kernel_lowers_to_triton_for_gpus():
    """Every op of the kernel has a Triton lowering (shapes of the GPU benchmark's small setting)."""
    text, _ = lowered_for_gpu((jnp.zeros((4, 400, 40)), jnp.zeros((4, 400)), jnp.zeros((4, 60), jnp.int32), jnp.zeros((4, 60))))
    assert "xla.gpu.triton" in text or "triton_kernel_call" in text


def test_pallas_kernel_compiles_with_triton_for_an_h100(tmp_path):
    """The kernel's Triton IR through Triton's own compiler down to an sm_90 cubin (ptxas included), no
    GPU needed. Skipped unless the `triton` package is installed (it is not a dependency)."""
    if jax.default_backend() == "gpu":
        pytest.skip("on a GPU the kernel itself runs, in the tests above")
    triton = pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget

    _, source = lowered_for_gpu((jnp.zeros((4, 400, 40)), jnp.zeros((4, 400)), jnp.zeros((4, 60), jnp.int32), jnp.zeros((4, 60))),
                                capture_triton_ir=True)
    # Drop the debug locations, which this Triton's parser need not understand.
    lines = [line for line in source.splitlines() if not line.startswith(("#loc", " at "))]
    source = re.sub(r' \[unknown\]| "[^"]*"\(#loc\d*\)| loc\([^)]*\)', "", "\n".join(lines))
    path = tmp_path / "viterbi.ttir"
    path.write_text(source)
    kernel = triton.compile(str(path), target=GPUTarget("cuda", 90, 32), options={"num_warps": 2, "num_stages": 1})
    assert "bar.sync" in kernel.asm["ptx"] and len(kernel.asm["cubin"]) > 0
