"""Host-side checks of data-dependent problems that cannot be seen at trace time: `check_batch` for
batches, and the eager checks of the public grid functions (`checked_when_eager`)."""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align.types import check_aligner_inputs, check_optional_rows, frames_needed, is_feasible_with

# compiled once per batch shape: run eagerly, its scan over the rows cost ~90 ms a training batch
_feasible_with = jax.jit(is_feasible_with)


def _first_bad(bad_B: np.ndarray) -> int | None:
    idx = np.flatnonzero(bad_B)
    return int(idx[0]) if idx.size else None


def _padding_lengths(name: str, paddings) -> np.ndarray:
    """(B, N) paddings -> (B,) lengths; rejects values other than 0/1 and holes inside a sequence."""
    pad = np.asarray(paddings)
    if pad.ndim != 2:
        raise ValueError(f"{name} must have rank 2, got shape {pad.shape}")
    pad = pad.astype(np.float64)
    b = _first_bad(~np.all((pad == 0) | (pad == 1), axis=1))
    if b is not None:
        raise ValueError(f"{name}: example {b} has values other than 0 and 1")
    n = pad.shape[1]
    lens = (n - pad.sum(axis=1)).astype(np.int64)
    right_padded = pad == (np.arange(n)[None, :] >= lens[:, None])
    b = _first_bad(~np.all(right_padded, axis=1))
    if b is not None:
        raise ValueError(f"{name}: example {b} is not right-padded (valid entries must come first)")
    return lens


def check_batch(
    logit_paddings,
    labels,
    label_paddings,
    *,
    num_classes: int,
    log_probs=None,
    features=None,
    logit_lengths=None,
    label_lengths=None,
    optional_rows=None,
) -> None:
    """Rejects a batch with a ValueError naming the first bad example.

    Args:
      logit_paddings: (B, T), 1 = padded. labels: (B, L) int. label_paddings: (B, L), 1 = padded.
      num_classes: label ids must lie in [0, num_classes) on valid rows.
      log_probs: optional (B, T, C); NaN/Inf on valid frames is rejected (-inf is a valid log-prob).
      features: optional (B, T, F); NaN/Inf on valid frames is rejected.
      logit_lengths, label_lengths: optional (B,) lengths that must agree with the paddings.
      optional_rows: optional (B, L), 1 = a row the path may skip (see `viterbi_align`); the target
        then needs only the frames of its shortest path.

    Checks: paddings are 0/1 and right-padded, ids in range, 1 <= L_b, the grid fits the frames
    (L_b <= T_b, or with optional rows the shortest path's rows), finite values, lengths consistent
    with paddings.
    """
    frame_len = _padding_lengths("logit_paddings", logit_paddings)
    label_len = _padding_lengths("label_paddings", label_paddings)
    labels = np.asarray(labels)
    if labels.shape != np.shape(label_paddings):
        raise ValueError(f"labels shape {labels.shape} differs from label_paddings {np.shape(label_paddings)}")
    if frame_len.shape != label_len.shape:
        raise ValueError(f"mismatched batch sizes: logit_paddings={frame_len.size}, labels={label_len.size}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}")

    for name, given, derived in (
        ("logit_lengths", logit_lengths, frame_len),
        ("label_lengths", label_lengths, label_len),
    ):
        if given is None:
            continue
        given = np.asarray(given)
        if given.shape != derived.shape:
            raise ValueError(f"{name} has shape {given.shape}, expected {derived.shape}")
        b = _first_bad(given != derived)
        if b is not None:
            raise ValueError(f"{name}: example {b} says {given[b]} but its paddings give {derived[b]}")

    valid_rows = np.arange(labels.shape[1])[None, :] < label_len[:, None]
    bad = valid_rows & ((labels < 0) | (labels >= num_classes))
    b = _first_bad(bad.any(axis=1))
    if b is not None:
        row = int(np.flatnonzero(bad[b])[0])
        raise ValueError(f"labels: example {b} row {row} has id {labels[b, row]}, outside [0, {num_classes})")
    b = _first_bad(label_len == 0)
    if b is not None:
        raise ValueError(f"labels: example {b} has an empty target")
    if optional_rows is None:
        b = _first_bad(label_len > frame_len)
        if b is not None:
            raise ValueError(
                f"labels: example {b} has a target of {label_len[b]} symbols but only {frame_len[b]} frames"
            )
    else:
        b = _first_bad(~np.asarray(_feasible_with(frame_len, label_paddings, optional_rows)))
        if b is not None:
            need = int(frames_needed(label_paddings, optional_rows)[b])
            raise ValueError(
                f"labels: example {b} needs {need} frames (its optional rows skipped) but has only {frame_len[b]}"
            )

    valid_frames = np.arange(np.shape(logit_paddings)[1])[None, :] < frame_len[:, None]
    for name, values, allow_neg_inf in (("log_probs", log_probs, True), ("features", features, False)):
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 3 or values.shape[:2] != valid_frames.shape:
            raise ValueError(f"{name} must have shape (B, T, _) = {valid_frames.shape + ('_',)}, got {values.shape}")
        bad_value = np.isnan(values) | (values == np.inf) | (~allow_neg_inf & (values == -np.inf))
        bad = (bad_value.any(axis=2)) & valid_frames
        b = _first_bad(bad.any(axis=1))
        if b is not None:
            t = int(np.flatnonzero(bad[b])[0])
            raise ValueError(f"{name}: example {b} frame {t} has a NaN or infinite value")


def check_grid_arguments(log_probs, logit_paddings, labels, label_paddings, optional_rows=None) -> None:
    """The value checks of the grid functions' concrete arguments (see `checked_when_eager`):
    paddings 0/1 and right-padded, label ids in [0, C) on valid rows (C = log_probs' classes), no
    NaN and no +inf log-prob on a valid frame (a NaN has no score; under `jax.jit`, where nothing
    can raise, its sequence is infeasible). Infeasible targets (L_b = 0 or L_b > T_b) and -inf
    log-probs are allowed: the functions define their results. Raises ValueError naming the
    argument, the first bad example and, for log_probs, its first bad frame."""
    check_aligner_inputs(log_probs, logit_paddings, labels, label_paddings)  # ranks, dtypes, sizes
    check_optional_rows(optional_rows, labels)
    if optional_rows is not None:
        values = np.asarray(optional_rows).astype(np.float64)
        b = _first_bad(~np.all((values == 0) | (values == 1), axis=1))
        if b is not None:
            raise ValueError(f"optional_rows: example {b} has values other than 0 and 1")
    frame_len = _padding_lengths("logit_paddings", logit_paddings)
    label_len = _padding_lengths("label_paddings", label_paddings)
    labels = np.asarray(labels)
    num_classes = log_probs.shape[2]
    bad = (np.arange(labels.shape[1])[None, :] < label_len[:, None]) & ((labels < 0) | (labels >= num_classes))
    b = _first_bad(bad.any(axis=1))
    if b is not None:
        row = int(np.flatnonzero(bad[b])[0])
        raise ValueError(
            f"labels: example {b} row {row} has id {labels[b, row]}, outside the {num_classes} classes of log_probs"
        )
    check_valid_frames_finite(log_probs, frame_len)


def check_valid_frames_finite(log_probs, frame_len) -> None:
    """Refuses a NaN or +inf log-prob on a valid frame (frame_len (B,) valid frames of each example),
    naming the example and the frame."""
    nan_BxT, positive_inf_BxT = (np.asarray(a) for a in _bad_frames(jnp.asarray(log_probs)))  # only (B, T) moves
    valid_BxT = np.arange(positive_inf_BxT.shape[1])[None, :] < frame_len[:, None]
    for bad, what in (
        (nan_BxT & valid_BxT, "a NaN log-probability"),
        (positive_inf_BxT & valid_BxT, "a +inf log-probability"),
    ):
        b = _first_bad(bad.any(axis=1))
        if b is not None:
            raise ValueError(f"log_probs: example {b} frame {int(np.flatnonzero(bad[b])[0])} has {what}")


@jax.jit
def _bad_frames(log_probs_BxTxC):
    """(B, T) frames holding a NaN, (B, T) frames holding a +inf; computed on device."""
    return jnp.any(jnp.isnan(log_probs_BxTxC), axis=2), jnp.any(log_probs_BxTxC == jnp.inf, axis=2)


def checked_when_eager(jitted=None, *, also=None, check=None):
    """The public face of a jitted function: called with concrete arrays, outside `jax.jit`, it first
    runs `check` (default `check_grid_arguments`, for the grid functions' log_probs, logit_paddings,
    labels, label_paddings, optional_rows) on the arguments named by `check`'s parameters (then
    `also(**bound arguments)`, a function's own checks, if given) and raises one ValueError naming
    the problem; inside a trace it adds nothing, so jitted code pays for no check. Use as
    `@checked_when_eager` or `@checked_when_eager(also=..., check=...)`."""
    if jitted is None:
        return functools.partial(checked_when_eager, also=also, check=check)
    check = check_grid_arguments if check is None else check

    signature = inspect.signature(jitted)
    names = tuple(inspect.signature(check).parameters)

    @functools.wraps(jitted)
    def call(*args, **options):
        given = signature.bind(*args, **options).arguments
        arrays = {name: given.get(name) for name in names}
        if not any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(arrays)):
            check(**arrays)
            if also is not None:
                bound = signature.bind(*args, **options)
                bound.apply_defaults()
                also(**bound.arguments)
        return jitted(*args, **options)

    call.lower, call.trace, call._cache_size = jitted.lower, jitted.trace, jitted._cache_size
    return call
