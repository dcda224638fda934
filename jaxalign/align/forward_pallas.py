"""`forward_score` as two Pallas kernels (forward and backward): the GPU path, as viterbi_pallas.py is
for `viterbi_align`.

The same recursions as forward.py, in the same float32 operations: the forward kernel runs
alpha_t = logaddexp(alpha_{t-1}, alpha_{t-1} shifted down a row) + emission and keeps, per frame, the
difference that the backward pass turns into shares (alpha - alpha shifted, NaN as 0); the backward
kernel hands each frame's occupancy back to the cells it came from, sigmoid(difference) to the same row
and the rest to the row above (a shift up). Each kernel is one program per sequence, one lane per row
(`pallas_grid`), one barrier per frame. The occupancies' sum into classes stays an XLA matmul.

In Pallas' interpreter (on CPU) the score equals `forward_score`'s bit for bit and the gradient up to
the matmul's summation order; compiled by Triton, exp and log are the GPU's, so both agree to float32
rounding. Reverse mode only, like `forward_score`.
"""

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from jaxalign.align import pallas_grid as grid
from jaxalign.align.pallas_grid import NEG_INF
from jaxalign.align.types import check_aligner_inputs, is_feasible, lengths, nan_free, valid_mask
from jaxalign.align.validate import checked_when_eager


def _forward_kernel(
    log_probs_ref, labels_ref, frame_len_ref, label_len_ref, score_ref, diff_ref, shift_ref, *, width, barrier
):
    """Sequence b's score (B,) and, per valid frame t >= 1, diff (B, T, W) = alpha_{t-1} - alpha_{t-1}
    shifted down, NaN as 0 (frame 0's is never read). Infeasible sequences are left alone."""
    b = pl.program_id(0)
    frames = frame_len_ref[b]
    rows = label_len_ref[b]

    @pl.when(is_feasible(frames, rows))
    def _():
        emit = grid.emissions(log_probs_ref, labels_ref, b, rows, width)
        shift = grid.Shifter(shift_ref, b, width, barrier)
        row_W = jax.lax.broadcasted_iota(jnp.int32, (width,), 0)

        def forward(t, carry):
            alpha_W, next_W = carry
            moved_W = shift.down(t, alpha_W)
            diff_W = alpha_W - moved_W
            diff_ref[b, t, :] = jnp.where(jnp.isnan(diff_W), 0.0, diff_W)
            upcoming_W = emit(jnp.minimum(t + 1, frames - 1))
            return jnp.logaddexp(alpha_W, moved_W) + next_W, upcoming_W

        alpha0_W = jnp.where(row_W == 0, emit(0), NEG_INF)
        last_W, _ = jax.lax.fori_loop(1, frames, forward, (alpha0_W, emit(jnp.minimum(1, frames - 1))))
        score_ref[b] = jnp.sum(jnp.where(row_W == rows - 1, last_W, 0.0))  # a sum keeps a NaN, as the scan would


def _backward_kernel(diff_ref, score_ref, frame_len_ref, label_len_ref, gamma_ref, shift_ref, *, width, barrier):
    """Occupancies gamma (B, T, W): P(on row l at frame t | all frames), on valid frames of sequences
    with a finite score (elsewhere left alone)."""
    b = pl.program_id(0)
    frames = frame_len_ref[b]
    rows = label_len_ref[b]
    score = score_ref[b]

    @pl.when(is_feasible(frames, rows) & jnp.isfinite(score))
    def _():
        shift = grid.Shifter(shift_ref, b, width, barrier, fill_up=0.0)
        row_W = jax.lax.broadcasted_iota(jnp.int32, (width,), 0)

        def backward(i, gamma_W):  # frame t's occupancy -> frame t-1's
            t = frames - 1 - i
            gamma_ref[b, t, :] = gamma_W
            diff_W = diff_ref[b, t, :]
            move_W = gamma_W * jax.nn.sigmoid(-diff_W)
            return gamma_W * jax.nn.sigmoid(diff_W) + shift.up(i, move_W)

        gamma_ref[b, 0, :] = jax.lax.fori_loop(0, frames - 1, backward, (row_W == rows - 1).astype(jnp.float32))


def _prepare(log_probs, logit_paddings, labels, label_paddings):
    """(W, (B, W) labels, (B,) frame lengths, (B,) label lengths) for the kernels."""
    batch, num_frames, num_classes = log_probs.shape
    width = grid.lane_width(labels.shape[1])
    grid.check_offsets("forward_score_pallas", batch, num_frames, width, num_classes)
    return width, grid.padded_labels(labels, num_classes, width), lengths(logit_paddings), lengths(label_paddings)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _score(interpret, log_probs, logit_paddings, labels, label_paddings):
    return _score_fwd(interpret, log_probs, logit_paddings, labels, label_paddings)[0]


def _score_fwd(interpret, log_probs, logit_paddings, labels, label_paddings):
    width, labels_BxW, frame_len_B, label_len_B = _prepare(log_probs, logit_paddings, labels, label_paddings)
    batch, num_frames, _ = log_probs.shape
    out_shape = (
        jax.ShapeDtypeStruct((batch,), jnp.float32),
        jax.ShapeDtypeStruct((batch, num_frames, width), jnp.float32),
        grid.scratch_shape(batch, width),
    )
    call = grid.grid_call(_forward_kernel, out_shape, batch, width, interpret, "forward_score_pallas")
    score_B, diff_BxTxW, _ = call(log_probs, labels_BxW, frame_len_B, label_len_B)
    feasible_B = is_feasible(frame_len_B, label_len_B) & nan_free(log_probs, logit_paddings)
    score_B = jnp.where(feasible_B, score_B, NEG_INF)  # not written where infeasible; NaN: no score
    return score_B, (diff_BxTxW, score_B, log_probs, logit_paddings, labels, label_paddings)


def _score_bwd(interpret, residuals, score_bar_B):
    diff_BxTxW, score_B, log_probs, logit_paddings, labels, label_paddings = residuals
    width, _, frame_len_B, label_len_B = _prepare(log_probs, logit_paddings, labels, label_paddings)
    batch, num_frames, num_classes = log_probs.shape
    out_shape = (jax.ShapeDtypeStruct((batch, num_frames, width), jnp.float32), grid.scratch_shape(batch, width))
    call = grid.grid_call(_backward_kernel, out_shape, batch, width, interpret, "forward_score_pallas_grad")
    gamma_BxTxW, _ = call(diff_BxTxW, score_B, frame_len_B, label_len_B)
    written_BxT = valid_mask(logit_paddings) & jnp.isfinite(score_B)[:, None]  # the kernel wrote only these
    gamma_BxTxW = jnp.where(written_BxT[..., None], gamma_BxTxW, 0.0)
    gamma_BxTxL = gamma_BxTxW[:, :, : labels.shape[1]]
    onehot_BxLxC = jax.nn.one_hot(
        jnp.clip(labels.astype(jnp.int32), 0, num_classes - 1), num_classes, dtype=jnp.float32
    )
    # HIGHEST: a GPU's default float32 matmul rounds to TF32 (10-bit mantissa).
    grad_BxTxC = jnp.einsum("btl,blc->btc", gamma_BxTxL, onehot_BxLxC, precision=jax.lax.Precision.HIGHEST)
    grad_BxTxC = grad_BxTxC * score_bar_B[:, None, None]
    return grad_BxTxC.astype(log_probs.dtype), None, None, None


_score.defvjp(_score_fwd, _score_bwd)


@checked_when_eager
@functools.partial(jax.jit, static_argnames=("interpret",))
def forward_score_pallas(
    log_probs, logit_paddings, labels, label_paddings, optional_rows=None, *, interpret: bool | None = None
) -> jax.Array:
    """`forward_score` as Pallas kernels; arguments, result and gradient as there.

    interpret: run the kernels in Pallas' interpreter; None: only where the backend is not a GPU.
    Memory: the residual is one (B, T, W) float32 table, W = max(32, the rows padded to a power of two).
    """
    check_aligner_inputs(log_probs, logit_paddings, labels, label_paddings)
    if optional_rows is not None:
        raise NotImplementedError(
            "forward_score_pallas has no kernel for optional rows yet: use the scan (forward_score, align.kernel=scan)"
        )
    if log_probs.shape[0] == 0 or labels.shape[1] == 0 or log_probs.shape[1] == 0:  # B = 0: an empty (0,)
        return jnp.full((log_probs.shape[0],), NEG_INF, jnp.float32)
    return _score(grid.use_interpreter(interpret), log_probs, logit_paddings, labels, label_paddings)
