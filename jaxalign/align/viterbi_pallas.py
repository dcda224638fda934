"""`viterbi_align` as one Pallas kernel: the GPU path (Triton), with the XLA scan as the portable one.

The result is `viterbi_align`'s, bit for bit: the same float32 recursion, the same tie-break and
forced path where every score is -inf, and the score summed from the path by the same code
(`path_alignment`). What differs is how it runs. The scan makes every frame a loop iteration of a
few fused XLA kernels, so on a GPU launches and loop overhead dominate; here one program per
sequence walks all of its frames in a single launch, like the plain CUDA kernel in
`experiments/viterbi_cuda_kernel.py`: the alpha column is a (W,) vector, one lane per grid row, its
shift down a row goes through a scratch with one barrier per frame (`pallas_grid.Shifter`), each
frame's emissions are gathered from log_probs inside the kernel one frame ahead of their use, and
backpointers, one byte per cell, go to a (B, T, W) scratch that the same program walks back.

Written by hand: no library has this recursion (see viterbi.py), and Pallas is JAX's own way to
write such a kernel once for GPUs. Off a GPU (and with `interpret=True`) the kernel runs in
Pallas' interpreter: exact but slow, for tests on CPU.
"""

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jaxalign.align import pallas_grid as grid
from jaxalign.align.types import Alignment, check_aligner_inputs, is_feasible, lengths, nan_free
from jaxalign.align.validate import checked_when_eager
from jaxalign.align.viterbi import no_grid, path_alignment


def _viterbi_kernel(
    log_probs_ref, labels_ref, frame_len_ref, label_len_ref, backptr_ref, positions_ref, shift_ref, *, width, barrier
):
    """One program = one sequence b. Refs are whole arrays: log_probs (B, T, C), labels (B, W) int32,
    frame_len and label_len (B,) int32; writes backptr (B, T, W) int8 and positions (B, T) int32
    (only valid frames of feasible sequences); shift_ref (B, 4W) is scratch."""
    b = pl.program_id(0)
    frames = frame_len_ref[b]
    rows = label_len_ref[b]

    @pl.when(is_feasible(frames, rows))
    def _():
        emit = grid.emissions(log_probs_ref, labels_ref, b, rows, width)
        shift = grid.Shifter(shift_ref, b, width, barrier)

        def forward(t, carry):
            alpha_W, next_W = carry
            move_W = shift.down(t, alpha_W)
            take_move_W = move_W > alpha_W  # ties stay, as in viterbi_align
            backptr_ref[b, t, :] = take_move_W.astype(jnp.int8)
            upcoming_W = emit(jnp.minimum(t + 1, frames - 1))  # in flight while this frame finishes
            return jnp.maximum(move_W, alpha_W) + next_W, upcoming_W

        row_W = jax.lax.broadcasted_iota(jnp.int32, (width,), 0)
        alpha0_W = jnp.where(row_W == 0, emit(0), grid.NEG_INF)
        jax.lax.fori_loop(1, frames, forward, (alpha0_W, emit(jnp.minimum(1, frames - 1))))
        barrier()  # every lane's backpointers are visible to the backtrace

        last_row = rows - 1
        positions_ref[b, frames - 1] = last_row

        def backward(i, row):
            t = frames - 1 - i
            step = backptr_ref[b, t, row].astype(jnp.int32)
            # Where all scores are -inf the pointers say "stay"; row <= frame forces the move.
            before = jnp.minimum(row - step, t - 1)
            positions_ref[b, t - 1] = before
            return before

        jax.lax.fori_loop(0, frames - 1, backward, last_row)


@checked_when_eager
@functools.partial(jax.jit, static_argnames=("interpret",))
def viterbi_align_pallas(
    log_probs, logit_paddings, labels, label_paddings, optional_rows=None, *, interpret: bool | None = None
) -> Alignment:
    """`viterbi_align` as one Pallas kernel; arguments and result as there (the same result).

    interpret: run the kernel in Pallas' interpreter; None: only where the backend is not a GPU.
    Memory: a (B, T, W) int8 backpointer table, W = max(32, the rows padded to a power of two).
    """
    check_aligner_inputs(log_probs, logit_paddings, labels, label_paddings)
    if optional_rows is not None:
        raise NotImplementedError(
            "viterbi_align_pallas has no kernel for optional rows yet: use the scan (viterbi_align, align.kernel=scan)"
        )
    batch, num_frames, num_classes = log_probs.shape
    num_rows = labels.shape[1]
    frame_len_B = lengths(logit_paddings)
    label_len_B = lengths(label_paddings)
    feasible_B = is_feasible(frame_len_B, label_len_B) & nan_free(log_probs, logit_paddings)
    if batch == 0 or num_rows == 0 or num_frames == 0:  # B = 0: empty outputs, no kernel to launch
        return no_grid(batch, num_frames)

    width = grid.lane_width(num_rows)
    grid.check_offsets("viterbi_align_pallas", batch, num_frames, width, num_classes)
    out_shape = (
        jax.ShapeDtypeStruct((batch, num_frames, width), jnp.int8),  # backpointers
        jax.ShapeDtypeStruct((batch, num_frames), jnp.int32),  # positions
        grid.scratch_shape(batch, width),
    )
    call = grid.grid_call(
        _viterbi_kernel, out_shape, batch, width, grid.use_interpreter(interpret), "viterbi_align_pallas"
    )
    # The path is integer, so no gradient flows through the kernel; the score's flows through path_alignment.
    _, positions_BxT, _ = call(
        jax.lax.stop_gradient(log_probs), grid.padded_labels(labels, num_classes, width), frame_len_B, label_len_B
    )
    return path_alignment(positions_BxT, log_probs, logit_paddings, labels, feasible_B)
