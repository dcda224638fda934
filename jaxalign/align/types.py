"""The `Alignment` result type, trace-time argument checks and helpers shared by the aligners."""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Alignment(NamedTuple):
    """A frame-to-row assignment for a batch (a pytree, so it passes through `jax.jit`).

    positions: (B, T) int32 target row of each frame, 0..L_b-1; -1 on padded frames.
    symbols:   (B, T) int32 label at that row; -1 on padded frames.
    score:     (B,) float32 sum of log-probs along the path; -inf where infeasible.
    feasible:  (B,) bool, false when L_b = 0 or L_b > T_b, or when a valid frame of log_probs holds a
               NaN (under `jax.jit`; outside it a NaN is refused); then the row is all -1.
    """

    positions: jax.Array
    symbols: jax.Array
    score: jax.Array
    feasible: jax.Array


def _is_float(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.floating)


def _is_bool_or_float(x) -> bool:
    return x.dtype == jnp.bool_ or _is_float(x)


def check_array(name: str, x, rank: int, kind: str) -> None:
    """Raises a TypeError/ValueError naming `name` when `x` has the wrong rank or dtype kind.

    kind: "float" (log-probs), "int" (labels, durations, symbols), "padding" (bool or float) or
    "flag" (bool, int or float: 1 = on).
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    if x.ndim != rank:
        raise ValueError(f"{name} must have rank {rank}, got shape {tuple(x.shape)}")
    ok = {
        "float": _is_float,
        "int": lambda a: jnp.issubdtype(a.dtype, jnp.integer),
        "padding": _is_bool_or_float,
        "flag": lambda a: _is_bool_or_float(a) or jnp.issubdtype(a.dtype, jnp.integer),
    }[kind](x)
    if not ok:
        want = {
            "float": "a floating dtype",
            "int": "an integer dtype",
            "padding": "bool or float",
            "flag": "bool, int or float",
        }[kind]
        raise TypeError(f"{name} must have {want}, got {x.dtype}")


def check_same(dims: dict[str, int], what: str) -> None:
    """Raises a ValueError when the named sizes in `dims` disagree (e.g. the batch sizes)."""
    if len(set(dims.values())) > 1:
        listed = ", ".join(f"{k}={v}" for k, v in dims.items())
        raise ValueError(f"mismatched {what}: {listed}")


def check_aligner_inputs(log_probs, logit_paddings, labels, label_paddings) -> None:
    """Trace-time checks common to `viterbi_align`, `masked_align` and `forward_score`."""
    check_array("log_probs", log_probs, 3, "float")
    check_array("logit_paddings", logit_paddings, 2, "padding")
    check_array("labels", labels, 2, "int")
    check_array("label_paddings", label_paddings, 2, "padding")
    check_same(
        {
            "log_probs": log_probs.shape[0],
            "logit_paddings": logit_paddings.shape[0],
            "labels": labels.shape[0],
            "label_paddings": label_paddings.shape[0],
        },
        "batch sizes",
    )
    check_same({"log_probs": log_probs.shape[1], "logit_paddings": logit_paddings.shape[1]}, "frame counts")
    check_same({"labels": labels.shape[1], "label_paddings": label_paddings.shape[1]}, "label lengths")


def check_optional_rows(optional_rows, labels) -> None:
    """Trace-time check of `optional_rows`: (B, L) like `labels`, bool or numbers (1 = optional)."""
    if optional_rows is None:
        return
    check_array("optional_rows", optional_rows, 2, "flag")
    check_same({"labels": tuple(labels.shape), "optional_rows": tuple(optional_rows.shape)}, "shapes")


def skip_ok(optional_BxL, row_ok_BxL) -> jax.Array:
    """(B, L) bool: row l may be entered from row l-2 by skipping row l-1 (optional, l >= 1; row 0
    counts from a virtual row above the grid, so row 1 can start a path when row 0 is optional)."""
    optional_BxL = (optional_BxL > 0) & row_ok_BxL
    return jnp.pad(optional_BxL[:, :-1], ((0, 0), (1, 0))) & row_ok_BxL


def min_frames(label_paddings, optional_rows) -> jax.Array:
    """(B, L) int32: the fewest frames a path needs to reach each row (1 for row 0, and for row 1
    when row 0 is optional), where each frame stays, moves down one row or skips one optional row.
    Works on NumPy arrays too (host-side feasibility)."""
    row_ok_BxL = valid_mask(jnp.asarray(label_paddings))
    skip_BxL = skip_ok(jnp.asarray(optional_rows), row_ok_BxL)

    def row(previous, skip_B):
        before_last, last = previous  # frames to reach rows l-2 and l-1
        here = jnp.minimum(last + 1, jnp.where(skip_B, before_last + 1, jnp.iinfo(jnp.int32).max // 2))
        return (last, here), here

    start = jnp.zeros(row_ok_BxL.shape[:1], jnp.int32)  # the virtual row above the grid, at "frame -1"
    far = jnp.full_like(start, jnp.iinfo(jnp.int32).max // 2)
    _, frames_LxB = jax.lax.scan(row, (far, start), skip_BxL.T)
    return frames_LxB.T


def end_rows(label_paddings, optional_rows) -> tuple[jax.Array, jax.Array]:
    """((B,) last row, (B,) bool: the row before it may end the path too, the last being optional)."""
    label_len_B = lengths(label_paddings)
    last_B = jnp.maximum(label_len_B - 1, 0)
    optional_last_B = jnp.take_along_axis(jnp.asarray(optional_rows) > 0, last_B[:, None], axis=1)[:, 0]
    return last_B, optional_last_B & (label_len_B >= 2)


def frames_needed(label_paddings, optional_rows) -> jax.Array:
    """(B,) int32 frames of each grid's shortest path: L_b, or with optional rows `min_frames` at
    the rows the path may end in."""
    if optional_rows is None:
        return lengths(jnp.asarray(label_paddings))
    frames_BxL = min_frames(label_paddings, optional_rows)
    last_B, before_ok_B = end_rows(label_paddings, optional_rows)
    at_last_B = jnp.take_along_axis(frames_BxL, last_B[:, None], axis=1)[:, 0]
    before_B = jnp.take_along_axis(frames_BxL, jnp.maximum(last_B - 1, 0)[:, None], axis=1)[:, 0]
    return jnp.where(before_ok_B, jnp.minimum(at_last_B, before_B), at_last_B)


def is_feasible_with(frame_len_B, label_paddings, optional_rows) -> jax.Array:
    """(B,) bool: a path through the grid (with optional rows, or None) fits the frames."""
    return (lengths(jnp.asarray(label_paddings)) >= 1) & (frames_needed(label_paddings, optional_rows) <= frame_len_B)


def lengths(paddings: jax.Array) -> jax.Array:
    """(B, N) paddings (1 = padded, right-padded) -> (B,) int32 number of valid entries."""
    return jnp.sum(1 - paddings.astype(jnp.int32), axis=1).astype(jnp.int32)


def valid_mask(paddings: jax.Array) -> jax.Array:
    """(B, N) right-padded paddings -> (B, N) bool, True on the valid entries."""
    return jnp.arange(paddings.shape[1])[None, :] < lengths(paddings)[:, None]


def is_feasible(frame_len_B: jax.Array, label_len_B: jax.Array) -> jax.Array:
    """A monotone path exists iff 1 <= L_b <= T_b."""
    return (label_len_B >= 1) & (label_len_B <= frame_len_B)


def nan_free(log_probs, logit_paddings) -> jax.Array:
    """(B,) bool: no NaN on any valid frame of the (B, T, C) log_probs (one reduction). A sequence with
    one has no defined score, so the grid functions call it infeasible under `jax.jit`, where they
    cannot raise (outside jit `check_grid_arguments` refuses it)."""
    nan_BxT = jnp.any(jnp.isnan(log_probs), axis=2)
    return ~jnp.any(nan_BxT & valid_mask(logit_paddings), axis=1)


def row_scores(log_probs_BxC: jax.Array, labels_BxL: jax.Array, row_ok_BxL: jax.Array) -> jax.Array:
    """One frame's (B, C) log-probs -> (B, L) float32 log-probs of the grid rows; -inf on padded rows
    and where the log-prob is NaN or +inf (no log-probability), so neither reaches the recursions.
    labels_BxL: clipped ids."""
    e_BxL = jnp.take_along_axis(log_probs_BxC, labels_BxL, axis=1).astype(jnp.float32)
    return jnp.where(row_ok_BxL & ~jnp.isnan(e_BxL) & (e_BxL < jnp.inf), e_BxL, -jnp.inf)


def infeasible_fill(positions, symbols, score, feasible, frame_valid):
    """Puts -1 on padded frames and whole infeasible rows, -inf scores on infeasible rows."""
    keep = frame_valid & feasible[:, None]
    return Alignment(
        positions=jnp.where(keep, positions, -1).astype(jnp.int32),
        symbols=jnp.where(keep, symbols, -1).astype(jnp.int32),
        score=jnp.where(feasible, score, -jnp.inf).astype(jnp.float32),
        feasible=feasible,
    )


def scan_unroll(unroll: int | None, *, accelerator: int = 16) -> int:
    """Frames per `lax.scan` iteration: `unroll`, or with None the backend's choice at trace time
    (`jax.default_backend()`): 1 on CPU, `accelerator` on GPU/TPU. The one home of that choice for
    the grid recursions (default 16) and the recurrent nets (`models.rnn`).

    Measured: on an H100 unroll=16 made `viterbi_align` 8-10x faster than unroll=1 (each loop
    iteration costs kernel launches), while XLA:CPU runs fastest with unroll=1.
    """
    if unroll is not None:
        return unroll
    return 1 if jax.default_backend() == "cpu" else accelerator
