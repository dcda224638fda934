"""What the Pallas grid kernels (`viterbi_pallas.py`, `forward_pallas.py`) share: one program per
sequence, one lane per grid row, and a column shifted by one row through a small global scratch.

The lane width W is the rows padded to a power of two (Triton's tensors need one), at least 32 (a
warp). Triton has no cross-lane shift, so a column goes through a (4W,) scratch per sequence: stored
at an offset of one, read back at zero (down a row) or the other way round (up a row), with a barrier
in between. Two alternating buffers mean the buffer a slow lane may still read is never the one being
written, so one barrier per shift suffices. Off a GPU the kernels run in Pallas' interpreter, which
runs the lanes in lockstep and needs no barrier.
"""

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

NEG_INF = float("-inf")


def use_interpreter(interpret: bool | None) -> bool:
    """None: interpret wherever the backend is not a GPU."""
    return jax.default_backend() != "gpu" if interpret is None else interpret


def lane_width(num_rows: int) -> int:
    return max(32, pl.next_power_of_2(num_rows))


def padded_labels(labels, num_classes: int, width: int):
    """(B, L) labels -> (B, W) int32 class ids, clipped into range."""
    num_rows = labels.shape[1]
    return jnp.pad(jnp.clip(labels.astype(jnp.int32), 0, num_classes - 1), ((0, 0), (0, width - num_rows)))


def check_offsets(caller: str, batch: int, num_frames: int, width: int, num_classes: int) -> None:
    """Raises where a (B, T, max(W, C)) table or the (B, 4W) scratch would pass Triton's int32 offsets."""
    per_sequence = max(num_frames * max(width, num_classes), 4 * width)
    if batch * per_sequence >= 2**31:
        raise ValueError(
            f"{caller}: B={batch} sequences of {per_sequence} cells (T={num_frames}, W={width}, C={num_classes}) "
            f"overflow the kernel's int32 offsets; split the batch (or use the scan version)"
        )


def grid_call(kernel, out_shape, batch: int, width: int, interpret: bool, name: str):
    """pallas_call with one program per sequence; the kernel gets `width` and `barrier` as keywords.

    The Triton backend is imported here, not with the package: jax 0.11 deprecates it (it warns when a
    kernel is lowered), and only these kernels need it.
    """
    from jax.experimental.pallas import triton as plgpu

    barrier = (lambda: None) if interpret else plgpu.debug_barrier
    return pl.pallas_call(
        functools.partial(kernel, width=width, barrier=barrier),
        out_shape=out_shape,
        grid=(batch,),
        interpret=interpret,
        # num_stages=1 is load-bearing: software pipelining of the frame loops could issue a scratch
        # load ahead of the barrier that makes the other lanes' stores visible.
        compiler_params=plgpu.CompilerParams(num_warps=min(max(width // 32, 1), 8), num_stages=1),
        name=name,
    )


def emissions(log_probs_ref, labels_ref, b, rows, width):
    """emit(t) -> (W,) float32 log-probs of sequence b's rows at frame t; -inf on padded rows and NaN."""
    row_ok_W = jax.lax.broadcasted_iota(jnp.int32, (width,), 0) < rows
    labels_W = labels_ref[b, :]

    def emit(t):
        e_W = log_probs_ref[b, t, labels_W].astype(jnp.float32)
        return jnp.where(row_ok_W & (e_W == e_W), e_W, NEG_INF)

    return emit


class Shifter:
    """Shifts (W,) columns by one row through sequence b's (4W,) scratch row in shift_ref.

    `down(t, x)` returns y with y[l] = x[l-1] and y[0] = `fill_down`; `up(t, x)`: y[l] = x[l+1],
    y[W-1] = `fill_up`. The fill values are written once, here (it ends with a barrier). t picks the
    buffer (t % 2): consecutive shifts must alternate it, so pass the loop index.
    """

    def __init__(self, shift_ref, b, width, barrier, fill_down=NEG_INF, fill_up=0.0):
        self.ref, self.b, self.width, self.barrier = shift_ref, b, width, barrier
        # Each buffer of 2W reads [fill_down, x_0 .. x_{W-1}, fill_up, ...] once x is stored at offset 1.
        at_2W = jax.lax.broadcasted_iota(jnp.int32, (2 * width,), 0)
        fills_2W = jnp.where(at_2W == width + 1, fill_up, fill_down).astype(jnp.float32)
        shift_ref[b, pl.ds(0, 2 * width)] = fills_2W
        shift_ref[b, pl.ds(2 * width, 2 * width)] = fills_2W
        barrier()

    def _through(self, t, x_W, store_at, load_at):
        base = (t & 1) * (2 * self.width)
        self.ref[self.b, pl.ds(base + store_at, self.width)] = x_W
        self.barrier()
        return self.ref[self.b, pl.ds(base + load_at, self.width)]  # its x came from other lanes

    def down(self, t, x_W):
        return self._through(t, x_W, 1, 0)

    def up(self, t, x_W):
        return self._through(t, x_W, 1, 2)


def scratch_shape(batch: int, width: int):
    """The (B, 4W) float32 scratch a `Shifter` needs: pass it as one of the kernel's outputs."""
    return jax.ShapeDtypeStruct((batch, 4 * width), jnp.float32)
