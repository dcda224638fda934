"""Viterbi over the target-ordered grid as one plain CUDA kernel (numba.cuda): the near-the-hardware
peer of `jaxalign.viterbi_align` in bench_viterbi.py.

One block per sequence, one thread per grid row. The alpha column lives in shared memory (two
buffers, so one barrier per frame); each thread gathers its own row's log-prob from the (B, T, C)
array in global memory (the next frame's is loaded before the barrier); backpointers are one byte
per cell in global memory, (B, T, L), written by consecutive threads to consecutive bytes; after the
last frame thread 0 walks them back serially. The result equals `viterbi_align`'s, positions
included: the same float32 recursion, the same tie-break (stay unless moving down is strictly
better) and the same forced path where every score is -inf. Lengths may be padded (valid entries
first); padded frames and infeasible sequences (L_b = 0 or L_b > T_b) get position -1.

    NUMBA_ENABLE_CUDASIM=1 python experiments/viterbi_cuda_kernel.py   # check on numba's CPU simulator
    python experiments/viterbi_cuda_kernel.py                           # the same check on a real GPU
"""

import argparse
import math
import os
import sys

import numpy as np
from numba import cuda, float32, int32

MAX_ROWS = 1024  # threads per block, so rows per grid


@cuda.jit
def viterbi_kernel(log_probs_BxTxC, labels_BxL, frame_len_B, label_len_B, backptr_BxTxL, positions_BxT, score_B):
    b = cuda.blockIdx.x
    row = cuda.threadIdx.x
    width = cuda.blockDim.x
    # Dynamic shared memory, 2 x blockDim floats: alpha before and after the current frame. (A static
    # cuda.shared.array would do on the GPU, but numba's simulator may allocate it twice, racily.)
    alpha_2xL = cuda.shared.array(0, float32)
    neg_inf = float32(-math.inf)
    num_frames = positions_BxT.shape[1]
    num_classes = log_probs_BxTxC.shape[2]
    frames = frame_len_B[b]
    rows = label_len_B[b]
    if rows < 1 or rows > frames:  # block-uniform, so no thread is left waiting at a barrier
        if row == 0:
            score_B[b] = neg_inf
            for t in range(num_frames):
                positions_BxT[b, t] = -1
        return

    active = row < rows
    label = 0
    if active:
        label = min(max(labels_BxL[b, row], 0), num_classes - 1)
    emit = neg_inf
    if row == 0:
        emit = log_probs_BxTxC[b, 0, label]
        if emit != emit:  # NaN counts as -inf
            emit = neg_inf
    alpha_2xL[row] = emit
    alpha_2xL[width + row] = neg_inf
    nxt = neg_inf
    if active and frames > 1:
        nxt = log_probs_BxTxC[b, 1, label]
    cuda.syncthreads()

    for t in range(1, frames):
        prev = ((t - 1) & 1) * width
        emit = nxt
        if emit != emit:
            emit = neg_inf
        if active and t + 1 < frames:
            nxt = log_probs_BxTxC[b, t + 1, label]  # in flight across the barrier
        if active:
            stay = alpha_2xL[prev + row]
            move = neg_inf
            if row > 0:
                move = alpha_2xL[prev + row - 1]
            take_move = move > stay
            alpha_2xL[(t & 1) * width + row] = (move if take_move else stay) + emit
            backptr_BxTxL[b, t, row] = 1 if take_move else 0
        cuda.syncthreads()  # also makes the backpointers written above visible to thread 0

    if row == 0:
        score_B[b] = alpha_2xL[((frames - 1) & 1) * width + rows - 1]
        for t in range(frames, num_frames):
            positions_BxT[b, t] = -1
        at = int32(rows - 1)
        for t in range(frames - 1, 0, -1):
            positions_BxT[b, t] = at
            # Where all scores are -inf the pointers say "stay"; row <= frame forces the move.
            at = min(at - int32(backptr_BxTxL[b, t, at]), int32(t - 1))
        positions_BxT[b, 0] = at


class CudaViterbi:
    """Device buffers for one (B, T, L) shape, reused across calls; call with device arrays."""

    def __init__(self, batch, frames, rows):
        if rows > MAX_ROWS:
            raise ValueError(f"at most {MAX_ROWS} rows (one thread per row), got {rows}")
        self.threads = max(32, -(-rows // 32) * 32)
        self.backptr_BxTxL = cuda.device_array((batch, frames, rows), np.uint8)
        self.positions_BxT = cuda.device_array((batch, frames), np.int32)
        self.score_B = cuda.device_array((batch,), np.float32)

    def __call__(self, log_probs_BxTxC, labels_BxL, frame_len_B, label_len_B):
        """Launches the kernel (asynchronously); returns the device arrays (positions, score)."""
        batch = self.positions_BxT.shape[0]
        shared_bytes = 2 * self.threads * 4
        viterbi_kernel[batch, self.threads, 0, shared_bytes](
            log_probs_BxTxC, labels_BxL, frame_len_B, label_len_B, self.backptr_BxTxL, self.positions_BxT, self.score_B
        )
        return self.positions_BxT, self.score_B


def viterbi_cuda(log_probs, labels, frame_lengths=None, label_lengths=None):
    """NumPy in, NumPy out: (B, T, C) float32 log-probs, (B, L) int labels, optional (B,) lengths ->
    ((B, T) int32 positions, (B,) float32 score)."""
    batch, frames, _ = log_probs.shape
    rows = labels.shape[1]
    frame_lengths = np.full(batch, frames) if frame_lengths is None else frame_lengths
    label_lengths = np.full(batch, rows) if label_lengths is None else label_lengths
    run = CudaViterbi(batch, frames, max(rows, 1))
    args = [
        np.ascontiguousarray(log_probs, np.float32),
        np.ascontiguousarray(labels, np.int32),
        np.asarray(frame_lengths, np.int32),
        np.asarray(label_lengths, np.int32),
    ]
    if rows == 0:  # keep a (B, 1) labels array so the kernel sees a valid shape
        args[1] = np.zeros((batch, 1), np.int32)
    positions, score = run(*[cuda.to_device(a) for a in args])
    return positions.copy_to_host(), score.copy_to_host()


def random_case(rng, batch, max_frames, max_rows, classes):
    """Padded batch with ties (log-probs on a coarse grid), -inf and NaN entries and infeasible rows."""
    frames = int(rng.integers(1, max_frames + 1))
    rows = int(rng.integers(1, max_rows + 1))
    log_probs = -rng.integers(0, 3, size=(batch, frames, classes)).astype(np.float32)
    if rng.random() < 0.5:
        log_probs = np.log(rng.dirichlet(np.ones(classes), size=(batch, frames))).astype(np.float32)
    log_probs[rng.random(log_probs.shape) < 0.1] = -np.inf
    log_probs[rng.random(log_probs.shape) < 0.02] = np.nan
    labels = rng.integers(0, classes, size=(batch, rows)).astype(np.int32)
    frame_len = rng.integers(0, frames + 1, size=batch)
    frame_len[0] = frames
    label_len = rng.integers(0, rows + 1, size=batch)
    label_len[0] = min(rows, frames)
    return log_probs, labels, frame_len, label_len


def check(cases, batch, max_frames, max_rows, classes=5, seed=0):
    """Positions identical to jaxalign.viterbi_align, scores equal up to float32 summation order."""
    import jax.numpy as jnp

    from jaxalign import viterbi_align

    rng = np.random.default_rng(seed)
    sequences = 0
    for case in range(cases):
        log_probs, labels, frame_len, label_len = random_case(rng, batch, max_frames, max_rows, classes)
        frames, rows = log_probs.shape[1], labels.shape[1]
        logit_pad = (np.arange(frames)[None, :] >= frame_len[:, None]).astype(np.float32)
        label_pad = (np.arange(rows)[None, :] >= label_len[:, None]).astype(np.float32)
        want = viterbi_align(jnp.asarray(log_probs), logit_pad, jnp.asarray(labels), label_pad)
        positions, score = viterbi_cuda(log_probs, labels, frame_len, label_len)
        if not np.array_equal(positions, np.asarray(want.positions)):
            bad = int(np.flatnonzero((positions != np.asarray(want.positions)).any(axis=1))[0])
            raise AssertionError(
                f"case {case}, sequence {bad}: positions {positions[bad]} != jaxalign "
                f"{np.asarray(want.positions)[bad]} (T_b={frame_len[bad]}, L_b={label_len[bad]})"
            )
        np.testing.assert_allclose(score, np.asarray(want.score), rtol=1e-5, atol=1e-4, err_msg=f"case {case}")
        sequences += batch
    return sequences


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check the CUDA Viterbi kernel against jaxalign.viterbi_align.")
    parser.add_argument("--cases", type=int, default=20, help="random padded batches")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-frames", type=int, default=12)
    parser.add_argument("--max-rows", type=int, default=6)
    args = parser.parse_args(argv)
    simulator = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    if not simulator and not cuda.is_available():
        sys.exit("no CUDA device: run with NUMBA_ENABLE_CUDASIM=1 to check on numba's CPU simulator")
    where = "numba CUDA simulator (CPU)" if simulator else f"GPU {cuda.get_current_device().name}"
    n = check(args.cases, args.batch, args.max_frames, args.max_rows)
    print(
        f"{where}: {n} sequences in {args.cases} random batches (T <= {args.max_frames}, L <= {args.max_rows}, "
        f"padding, ties, -inf, NaN, infeasible): positions identical to jaxalign.viterbi_align"
    )


if __name__ == "__main__":
    main()
