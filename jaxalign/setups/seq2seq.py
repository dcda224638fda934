"""A posteriori sequence to sequence (`setup=seq2seq`) and one to many (`setup=one_to_many`): an
encoder reads the whole input, then a decoder emits the target symbols and an end symbol
(`jaxalign.models.seq2seq`).

Divergence: cross-entropy of every target symbol and of the end symbol, with teacher forcing (the
decoder is fed the true previous symbols), summed over the batch's target positions and divided by
their number. Decoding, jitted for `setup.max_output_length` symbols: greedy, or with
`trainer.beam_width` > 1 beam search (then the greedy decode is also scored, as
`label_error_rate_greedy`).

seq2seq attends over the encoder's states (`setup.attention`: content | location), and its
alignment is read out of the attention: `viterbi_align` over the log attention weights of the
teacher-forced decode, with one grid row per output position, gives the best monotone path through
the attention matrix; `positions` are its rows. With `data.target_order=reversed` the path runs
monotone from the last frame to the first (the order the reversed targets are written in).

one_to_many sees one vector per example: the frames, however many, are linearly resampled to
`setup.input_frames` evenly spaced points from the first frame to the last, and the result is read
as one image (features x frames, a digit strip becomes one 8x64 image) by a small convolutional
stack (`model.conv_channels`, 3x3 convs with 2x2 max-pooling, as a captioning encoder reads an
image), flattened, and passed through an MLP (`model=mlp`: model.hidden x model.num_layers). The
vector sets the decoder's initial state and is fed to every decoder step (Cho et al. 2014).
Resampling rather than padding keeps every input whole whatever its length (no truncation) and puts
the start and end of every sequence at the same place in the vector, so the first and last symbols
read from fixed columns; the cost is that widths are squeezed or stretched, so a long strip's
digits are narrower than a short strip's. The convolutions share their weights across positions,
which a plain MLP on the flattened image lacks (it has to learn each digit at each place).
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align import viterbi_align
from jaxalign.errors import ConfigError
from jaxalign.models.rnn import reverse_within_lengths
from jaxalign.models.seq2seq import Attention, Decoder, EncoderDecoder, VectorEncoder, lengths_of
from jaxalign.setups.base import Setup, check_no_ctc, sequence_model

ATTENTIONS = ("content", "location")  # setup.attention: additive (Bahdanau) | plus a conv over the previous weights


def _end_targets(labels_BxL, label_paddings_BxL, end_id: int):
    """(B, L + 1) targets: the labels, the end id at position L_b, -1 after it."""
    B, L = labels_BxL.shape
    L_B = lengths_of(label_paddings_BxL)
    padded = jnp.concatenate([labels_BxL, jnp.full((B, 1), -1, labels_BxL.dtype)], axis=1)
    i_1xL1 = jnp.arange(L + 1)[None, :]
    return jnp.where(i_1xL1 < L_B[:, None], padded, jnp.where(i_1xL1 == L_B[:, None], end_id, -1))


def sequence_log_likelihood(logits_BxLxV, targets_BxL):
    """(B,) sum over the valid targets (>= 0) of log p(target | prefix), and (B, L) the terms."""
    log_p = jax.nn.log_softmax(logits_BxLxV.astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(log_p, jnp.maximum(targets_BxL, 0)[..., None], axis=-1)[..., 0]
    terms = jnp.where(targets_BxL >= 0, picked, 0.0)
    return jnp.sum(terms, axis=1), terms


def _decoded(symbols_BxM, end_id: int):
    """labels (B, M) and label_paddings (B, M): 1 from the first end symbol on."""
    ended = jnp.cumsum(symbols_BxM == end_id, axis=1) > 0
    return jnp.where(ended, -1, symbols_BxM), ended.astype(jnp.float32)


class OneToMany(Setup):
    """One input vector, a symbol sequence out: `VectorEncoder` + `Decoder` without attention."""

    name = "one_to_many"
    frame_metrics = False  # no per-frame outputs
    attends = False

    def __init__(self, config, num_classes: int):
        super().__init__(config, num_classes)
        self.max_output_length = config.setup.max_output_length
        self.beam_width = config.trainer.beam_width
        self.reversed = config.data.target_order == "reversed"

    @classmethod
    def check_config(cls, config) -> None:
        check_no_ctc(cls.name, config.align)
        if cls.attends and config.model.kind == "mlp":
            raise ConfigError(f"setup={cls.name} with model.kind=mlp: its encoder is recurrent; pick a recurrent model")
        if not cls.attends and config.model.kind != "mlp":
            raise ConfigError(
                f"setup={cls.name} with model.kind={config.model.kind}: one_to_many encodes one vector with an MLP; "
                "use model=mlp"
            )

    def check_data(self, splits) -> None:
        for split in ("train", "valid", "test"):
            data = getattr(splits, split)
            longest = int(data.label_lengths().max()) if len(data) else 0
            if longest > self.max_output_length:
                raise ConfigError(
                    f"setup.max_output_length={self.max_output_length} is shorter than the longest {split} target "
                    f"({longest} symbols): set setup.max_output_length={longest} or more"
                )

    def feasible(self, frame_lengths, label_lengths):
        """Any non-empty target; with attention the alignment also needs L <= T."""
        return label_lengths >= 1

    @property
    def num_outputs(self) -> int:
        return self.num_classes + 1  # the end symbol last

    def make_encoder(self, config, feature_dim: int, rngs):
        m = config.model
        encoder = VectorEncoder(
            feature_dim,
            num_frames=config.setup.input_frames,
            conv_channels=m.conv_channels,
            hidden=m.hidden,
            num_layers=m.num_layers,
            dropout=m.dropout,
            rngs=rngs,
        )
        return encoder, encoder.out_features

    def make_model(self, config, feature_dim, rngs):
        m = config.model
        encoder, encoder_dim = self.make_encoder(config, feature_dim, rngs)
        attention = None
        if self.attends:
            attention = Attention(
                m.decoder_hidden,
                encoder_dim,
                m.attention_dim,
                location=config.setup.attention == "location",
                filters=m.location_filters,
                width=m.location_width,
                rngs=rngs,
            )
        decoder = Decoder(
            self.num_classes,
            encoder_dim,
            hidden=m.decoder_hidden,
            embedding=m.embedding_dim,
            attention=attention,
            rngs=rngs,
        )
        return EncoderDecoder(encoder, decoder, encoder_dim, rngs=rngs)

    def loss(self, model, batch, step, dropout_key):
        logits, _ = model.teacher_forced(
            batch["features"],
            batch["logit_paddings"],
            batch["labels"],
            batch["label_paddings"],
            dropout_key=dropout_key,
        )
        return self.divergence(None, logits, batch, step)

    def divergence(self, log_probs, logits_BxLxV, batch, step):
        targets_BxL = _end_targets(batch["labels"], batch["label_paddings"], self.num_classes)
        targets_BxL = jnp.where(batch["weights"][:, None] > 0, targets_BxL, -1)
        _, terms = sequence_log_likelihood(logits_BxLxV, targets_BxL)
        count = jnp.sum(targets_BxL >= 0)
        hits = jnp.sum((jnp.argmax(logits_BxLxV, axis=-1) == targets_BxL) & (targets_BxL >= 0))
        metrics = {"train_symbol_accuracy": hits / jnp.maximum(count, 1)}
        return -jnp.sum(terms) / jnp.maximum(count, 1), metrics

    def predict(self, model, batch) -> dict:
        """`labels` / `label_paddings` (B, max_output_length + 1): the decode (beam search with
        trainer.beam_width > 1, then also `greedy_labels`); seq2seq adds `positions` (B, T) and
        `log_probs` (B, T, L + 1), the log attention of the teacher-forced decode (frames x output
        positions, the end last), and `attention` (B, T, max_output_length + 1) of the greedy decode."""
        features, pad = batch["features"], batch["logit_paddings"]
        symbols, weights_BxMxT = model.greedy(features, pad, self.max_output_length)
        labels, label_pad = _decoded(symbols, self.num_classes)
        out = {"labels": labels, "label_paddings": label_pad}
        if self.beam_width > 1:
            out["greedy_labels"], out["greedy_label_paddings"] = labels, label_pad
            beam = model.beam(features, pad, self.max_output_length, self.beam_width)
            out["labels"], out["label_paddings"] = _decoded(beam, self.num_classes)
        if self.attends:
            out["attention"] = jnp.swapaxes(weights_BxMxT, 1, 2)
            out.update(self.forced_alignment(model, batch))
        return out

    def forced_alignment(self, model, batch) -> dict:
        _, weights_BxL1xT = model.teacher_forced(
            batch["features"], batch["logit_paddings"], batch["labels"], batch["label_paddings"]
        )
        log_att_BxTxL1 = jnp.log(jnp.maximum(jnp.swapaxes(weights_BxL1xT, 1, 2), 1e-30))
        return {"log_probs": log_att_BxTxL1, "positions": self.attention_path(log_att_BxTxL1, batch)}

    def attention_path(self, log_att_BxTxL1, batch):
        """(B, T) the best monotone path through the attention matrix (rows: output positions
        0..L_b-1; the end symbol's row is left out), -1 on padding."""
        pad, label_pad = batch["logit_paddings"], batch["label_paddings"]
        B, L = label_pad.shape
        rows_BxL = jnp.broadcast_to(jnp.arange(L, dtype=jnp.int32), (B, L))
        scores_BxTxL = log_att_BxTxL1[..., :L]
        if self.reversed:  # read the frames last to first: the path is monotone in the targets' order
            T_B = lengths_of(pad)
            flipped = reverse_within_lengths(jnp.swapaxes(scores_BxTxL, 0, 1), T_B)
            positions = viterbi_align(jnp.swapaxes(flipped, 0, 1), pad, rows_BxL, label_pad).positions
            return jnp.swapaxes(reverse_within_lengths(positions.T[..., None], T_B)[..., 0], 0, 1)
        return viterbi_align(scores_BxTxL, pad, rows_BxL, label_pad).positions

    def plot_example(self, path, out, data, example, title):
        """seq2seq: the attention matrix with its path and the true segmentation; one_to_many: none."""
        if not self.attends:
            return None
        from jaxalign.plots import plot_attention

        labels = data.labels[example]
        return plot_attention(
            path,
            np.exp(out["log_probs"][:, : len(labels)]),
            [data.vocab[c] for c in labels],
            title=title,
            positions=out["positions"],
            truth=None if data.alignments is None else data.alignments[example],
        )


class Seq2Seq(OneToMany):
    """The recurrent encoder (`model`) over the frames, a decoder attending over its states."""

    name = "seq2seq"
    aligns = True  # positions: the path through the attention
    attends = True

    def __init__(self, config, num_classes: int):
        super().__init__(config, num_classes)
        self.attention = config.setup.attention

    def feasible(self, frame_lengths, label_lengths):
        return Setup.feasible(self, frame_lengths, label_lengths)

    def make_encoder(self, config, feature_dim, rngs):
        m = config.model
        width = m.hidden * (2 if m.bidirectional else 1)
        return sequence_model(m, feature_dim, width, rngs), width
