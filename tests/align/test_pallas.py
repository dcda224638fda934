"""The Pallas kernels (`viterbi_align_pallas`, `forward_score_pallas`) against the scans and brute force
(interpreted on CPU, compiled on a GPU), and their lowering to Triton for NVIDIA GPUs (done on CPU too:
no GPU is needed to lower, only to run)."""

import contextlib
import io
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxalign import forward_score, viterbi_align
from jaxalign.align import forward_score_pallas, viterbi_align_pallas
from tests.align.test_viterbi import random_batch
from tests.reference import brute_forward, brute_viterbi, lengths


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


def wide_batch(rows, tie_prone, hostile=False, classes=4):
    """Four sequences that fill the W lanes with many paths: L = rows, rows, rows - 3 and rows // 2 + 1
    over T = 2 rows + 5, rows + 3, 3 rows and rows + 1 frames (the rest padding). hostile: sequence 0 all
    -inf (any path scores -inf), a NaN in a frame of sequence 1, and -inf entries in sequences 2 and 3."""
    rng = np.random.default_rng(rows)
    label_len = np.array([rows, rows, max(rows - 3, 1), rows // 2 + 1])
    frame_len = np.array([2 * rows + 5, rows + 3, 3 * rows, rows + 1])
    frames = int(frame_len.max())
    logits = rng.integers(0, 3, size=(4, frames, classes)) if tie_prone else rng.normal(size=(4, frames, classes)) * 2
    log_probs = np.array(jax.nn.log_softmax(logits.astype(np.float32), axis=-1))
    if hostile:
        log_probs[0] = -np.inf
        log_probs[1, rows // 2] = np.nan
        log_probs[2, 1::5, 0] = -np.inf  # (never the first or last frame, and gaps of 4: paths remain)
        log_probs[3, 2::5, 0] = -np.inf
    labels = rng.integers(0, classes, size=(4, rows)).astype(np.int32)
    logit_pad = (np.arange(frames)[None] >= frame_len[:, None]).astype(np.float32)
    label_pad = (np.arange(rows)[None] >= label_len[:, None]).astype(np.float32)
    return log_probs, logit_pad, labels, label_pad


@pytest.mark.slow
@pytest.mark.parametrize("rows", [31, 33, 64, 70, 128])
@pytest.mark.parametrize("tie_prone", [False, True])
def test_pallas_matches_the_scan_on_every_lane(rows, tie_prone):
    """Sequences that use lanes past the first warp (W = 32, 64 or 128); a race between lanes on a GPU,
    or a wrong shift, would change these paths."""
    batch = wide_batch(rows, tie_prone)
    assert_same_alignment(viterbi_align(*batch), viterbi_align_pallas(*batch))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_pallas_on_hostile_inputs(dtype):
    """NaN and -inf log-probs under jit (a sequence all at -inf still gets a valid path; one with a NaN
    none), in float32 and bfloat16."""
    log_probs, *rest = wide_batch(40, tie_prone=False, hostile=True)
    log_probs = jnp.asarray(log_probs, dtype)
    ali = jax.jit(viterbi_align_pallas)(log_probs, *rest)
    assert_same_alignment(jax.jit(viterbi_align)(log_probs, *rest), ali)
    assert ali.feasible[0] and ali.score[0] == -np.inf and not np.any(np.isnan(np.asarray(ali.score)))
    assert not ali.feasible[1] and np.all(np.asarray(ali.positions[1]) == -1)


def test_pallas_without_rows_or_frames_and_with_named_errors():
    log_probs, logit_pad, labels, label_pad = random_batch(0)
    for args in (
        (log_probs, logit_pad, labels[:, :0], label_pad[:, :0]),
        (log_probs[:, :0], logit_pad[:, :0], labels, label_pad),
    ):
        ali = viterbi_align_pallas(*args)
        assert (
            not np.any(ali.feasible)
            and ali.positions.shape == args[0].shape[:2]
            and np.all(np.asarray(ali.positions) == -1)
        )
    huge = jax.ShapeDtypeStruct((2**14, 2**12, 40), jnp.float32)  # 2^26 cells x W=32: past int32 offsets
    with pytest.raises(ValueError, match="split the batch"):
        jax.eval_shape(
            viterbi_align_pallas,
            huge,
            jax.ShapeDtypeStruct(huge.shape[:2], jnp.float32),
            jax.ShapeDtypeStruct((2**14, 5), jnp.int32),
            jax.ShapeDtypeStruct((2**14, 5), jnp.float32),
        )
    with pytest.raises(TypeError, match="labels"):
        viterbi_align_pallas(log_probs, logit_pad, labels.astype(np.float32), label_pad)


def score_and_grad(score_fn, log_probs, *rest):
    """(B,) scores and the (B, T, C) gradient of their sum, as NumPy."""
    (_, score), grad = jax.value_and_grad(lambda x: ((s := score_fn(x, *rest)).sum(), s), has_aux=True)(
        jnp.asarray(log_probs)
    )
    return np.asarray(score), np.asarray(grad)


def assert_same_forward(batch):
    """The score of forward_score bit for bit (the same float32 operations, interpreted on CPU; a GPU's
    exp and log may differ in the last bits), the gradient up to summation order."""
    want_score, want_grad = score_and_grad(forward_score, *batch)
    score, grad = score_and_grad(forward_score_pallas, *batch)
    if jax.default_backend() == "gpu":
        np.testing.assert_allclose(score, want_score, rtol=1e-5)
    else:
        np.testing.assert_array_equal(score, want_score)
    np.testing.assert_allclose(grad, want_grad, atol=1e-6)
    assert not np.any(np.isnan(grad))
    return score, grad


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tie_prone", [False, True])
def test_pallas_forward_score_matches_brute_force_and_the_scan(seed, tie_prone):
    batch = random_batch(seed, frames=8, rows=5, tie_prone=tie_prone)
    score, grad = assert_same_forward(batch)
    for b, (total, occupancy) in enumerate(brute_forward(*batch)):
        np.testing.assert_allclose(score[b], total, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(grad[b], occupancy, atol=2e-6)


@pytest.mark.slow
@pytest.mark.parametrize("rows", [31, 33, 64, 70, 128])
@pytest.mark.parametrize("tie_prone", [False, True])
def test_pallas_forward_score_on_every_lane(rows, tie_prone):
    assert_same_forward(wide_batch(rows, tie_prone))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_pallas_forward_score_on_hostile_inputs(dtype):
    """-inf where no path has probability (sequences 0 and 1), finite elsewhere, no NaN in the gradient."""
    log_probs, *rest = wide_batch(40, tie_prone=False, hostile=True)
    score, _ = assert_same_forward((jnp.asarray(log_probs, dtype), *rest))
    assert score[0] == -np.inf and score[1] == -np.inf and np.all(np.isfinite(score[2:]))


def test_pallas_forward_score_without_rows_or_frames():
    log_probs, logit_pad, labels, label_pad = random_batch(0)
    for args in (
        (log_probs, logit_pad, labels[:, :0], label_pad[:, :0]),
        (log_probs[:, :0], logit_pad[:, :0], labels, label_pad),
    ):
        score, grad = score_and_grad(forward_score_pallas, *args)
        assert np.all(score == -np.inf) and np.all(grad == 0)


def total_score(score_fn):
    """A scalar of the finite scores, to differentiate."""
    return lambda *a: jnp.sum(jnp.where(jnp.isfinite(s := score_fn(*a)), s, 0.0))


GPU_SHAPES = (
    jax.ShapeDtypeStruct((4, 400, 40), jnp.float32),
    jax.ShapeDtypeStruct((4, 400), jnp.float32),
    jax.ShapeDtypeStruct((4, 60), jnp.int32),
    jax.ShapeDtypeStruct((4, 60), jnp.float32),
)
COMPILED = {  # the non-interpreted kernels, as a GPU would run them
    "viterbi": lambda *a: viterbi_align_pallas(*a, interpret=False).positions,
    "forward_score and its gradient": jax.grad(total_score(lambda *a: forward_score_pallas(*a, interpret=False))),
}


def lowered_for_gpu(fn, capture_triton_ir=False):
    """Lowers fn at GPU_SHAPES for CUDA on this machine: (StableHLO text, [Triton IR text of each kernel])."""
    from jax.experimental import pallas as pl

    import jaxalign.align.pallas_grid as module

    printed = io.StringIO()
    original = pl.pallas_call
    jax.clear_caches()  # a cached lowering would print no Triton IR
    with contextlib.ExitStack() as stack:
        if capture_triton_ir:  # pallas_call(debug=True) prints the Triton module it built
            stack.enter_context(pytest.MonkeyPatch.context()).setattr(
                module.pl, "pallas_call", lambda *a, **k: original(*a, **{**k, "debug": True})
            )
            stack.enter_context(contextlib.redirect_stdout(printed))
        try:
            lowered = jax.jit(fn).trace(*GPU_SHAPES).lower(lowering_platforms=("cuda",))
        except RuntimeError as error:  # jax >= 0.11 asks the GPU for its version, and compiles to PTX, while lowering
            if "Triton compilation handler" in str(error) or "No supported GPU" in str(error):
                pytest.skip(f"this jax lowers Triton only beside a GPU: {error}")
            raise
    modules = [part.split(":\n", 1)[1] for part in printed.getvalue().split("The Triton module for pallas_call")[1:]]
    return lowered.as_text(), [m.split("\nThe kernel jaxpr for pallas_call")[0] for m in modules]


@pytest.mark.slow
@pytest.mark.parametrize("name", COMPILED)
def test_pallas_kernels_lower_to_triton_for_gpus(name):
    """Every op of the kernels has a Triton lowering (shapes of the GPU benchmark's small setting), and each
    kernel keeps its barriers (which the interpreter cannot miss): one after writing the shift buffers'
    fill values, one per shift in the frame loop, and in the Viterbi one before the backtrace."""
    text, kernels = lowered_for_gpu(COMPILED[name], capture_triton_ir=True)
    assert "xla.gpu.triton" in text or "triton_kernel_call" in text
    assert [kernel.count("gpu.barrier") for kernel in kernels] == ([3] if name == "viterbi" else [2, 2])


@pytest.mark.parametrize("name", COMPILED)
def test_pallas_kernels_compile_with_triton_for_an_h100(name, tmp_path):
    """The kernels' Triton IR through Triton's own compiler down to an sm_90 cubin (ptxas included), no
    GPU needed. Skipped unless the `triton` package is installed (it is not a dependency)."""
    if jax.default_backend() == "gpu":
        pytest.skip("on a GPU the kernels themselves run, in the tests above")
    triton = pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget

    _, sources = lowered_for_gpu(COMPILED[name], capture_triton_ir=True)
    assert len(sources) == (1 if name == "viterbi" else 2)
    for k, source in enumerate(sources):
        # Drop the debug locations, which this Triton's parser need not understand.
        lines = [line for line in source.splitlines() if not line.startswith(("#loc", " at "))]
        path = tmp_path / f"kernel{k}.ttir"
        path.write_text(re.sub(r' \[unknown\]| "[^"]*"\(#loc\d*\)| loc\([^)]*\)', "", "\n".join(lines)))
        kernel = triton.compile(str(path), target=GPUTarget("cuda", 90, 32), options={"num_warps": 2, "num_stages": 1})
        assert "bar.sync" in kernel.asm["ptx"] and len(kernel.asm["cubin"]) > 0
