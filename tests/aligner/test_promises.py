"""What `jaxalign-align` promises about its --out folder and its results (issue: alignments you can
trust): one call at a time, atomic files, INCOMPLETE until done, --resume and --overwrite, a full disk
in one line, a run still training refused, implausible alignments named, a silence-only target."""

import errno
import subprocess
import sys

import numpy as np
import pytest
from praatio import textgrid

import jaxalign.aligner.export
from jaxalign import load_run
from jaxalign.aligner.corpus import suspicions
from jaxalign.aligner.export import Clock, Interval
from jaxalign.aligner.output_dir import INCOMPLETE, WRITTEN
from tests.corpora import align

pytestmark = pytest.mark.slow


def textgrids(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*.TextGrid"))


@pytest.fixture(scope="module")
def reference(trained):
    out = trained["root"] / "reference"
    code, lines = align(trained["run"], trained["corpus"], "--out", out)
    assert code == 0, lines
    return out


def test_a_finished_folder_is_not_incomplete_and_lists_what_it_wrote(reference):
    assert not (reference / INCOMPLETE).exists()
    written = set((reference / WRITTEN).read_text().split())
    assert set(textgrids(reference)) <= written and {"alignments.csv", "unaligned.csv", "suspect.csv"} <= written


def test_an_interrupted_call_leaves_whole_files_marked_incomplete_and_resume_finishes_it(
    trained,
    reference,
    tmp_path,
    monkeypatch,
):
    out, real, calls = tmp_path / "out", jaxalign.aligner.export.write_textgrid, []

    def interrupted(*args):
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the fourth TextGrid is being written
        calls.append(args[0])
        return real(*args)

    monkeypatch.setattr(jaxalign.aligner.corpus, "write_textgrid", interrupted)
    with pytest.raises(KeyboardInterrupt):
        align(trained["run"], trained["corpus"], "--out", out)
    assert (out / INCOMPLETE).exists()
    assert len(textgrids(out)) == 3 and not list(out.rglob("*.tmp"))
    for path in out.rglob("*.TextGrid"):
        textgrid.openTextgrid(str(path), includeEmptyIntervals=True)  # whole files only
    code, lines = align(trained["run"], trained["corpus"], "--out", out)
    assert code == 1 and "--resume" in lines[-1]  # not empty: it says how to go on
    monkeypatch.setattr(jaxalign.aligner.corpus, "write_textgrid", real)
    code, lines = align(trained["run"], trained["corpus"], "--out", out, "--resume")
    assert code == 0, lines
    assert any("3 recordings were aligned by an earlier call" in line for line in lines)
    assert not (out / INCOMPLETE).exists()
    assert textgrids(out) == textgrids(reference)
    for name in ["alignments.csv", "unaligned.csv", *textgrids(reference)]:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_resume_refuses_a_folder_aligned_with_another_dictionary(trained, tmp_path):
    out = tmp_path / "out"
    assert align(trained["run"], trained["corpus"], "--out", out)[0] == 0
    other = tmp_path / "other.txt"
    other.write_text(trained["source_dictionary"].read_text() + "extra\tsil2\n")
    code, lines = align(trained["run"], trained["corpus"], "--out", out, "--resume", "--dictionary", other)
    assert code == 1 and "another dictionary" in lines[-1] and not any("Traceback" in line for line in lines)


def test_overwrite_removes_the_textgrid_of_a_recording_now_unaligned(trained, tmp_path):
    out = tmp_path / "out"
    assert align(trained["run"], trained["corpus"], "--out", out)[0] == 0
    victim = trained["good"][0]
    word = (trained["corpus"] / f"{victim}.lab").read_text().split()[0]
    lines = trained["source_dictionary"].read_text().splitlines()
    other = tmp_path / "other.txt"  # the word spoken with a phone the run never learnt
    other.write_text("".join((f"{word}\tqqq" if line.split("\t")[0] == word else line) + "\n" for line in lines))
    code, said = align(trained["run"], trained["corpus"], "--out", out, "--overwrite", "--dictionary", other)
    assert code == 0, said
    assert not (out / f"{victim}.TextGrid").exists()  # no stale TextGrid of the earlier call
    assert f"{victim},phones the run was not trained on: qqq" in (out / "unaligned.csv").read_text()


def test_a_second_call_into_a_folder_in_use_is_refused_in_one_line(trained, tmp_path):
    out = tmp_path / "out"
    probe = (
        "import sys, time\nfrom jaxalign.training.run_dir import hold\n"
        "with hold(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", probe, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, lines = align(trained["run"], trained["corpus"], "--out", out, "--overwrite")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1 and not any("Traceback" in line for line in lines)
    assert "is in use by" in lines[-1] and "one jaxalign-align writes into a folder at a time" in lines[-1]
    assert not textgrids(out)


def test_a_full_disk_ends_in_one_line_with_no_partial_file(trained, tmp_path, monkeypatch):
    out, real, calls = tmp_path / "out", jaxalign.aligner.export.write_textgrid, []

    def disk_full(path, tiers, duration):
        if calls:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        calls.append(path)
        return real(path, tiers, duration)

    monkeypatch.setattr(jaxalign.aligner.corpus, "write_textgrid", disk_full)
    code, lines = align(trained["run"], trained["corpus"], "--out", out)
    assert code == 1 and lines[-1].startswith("jaxalign-align: error: could not write into --out")
    assert "No space left on device" in lines[-1] and "INCOMPLETE" in lines[-1]
    assert (out / INCOMPLETE).exists() and len(textgrids(out)) == 1 and not list(out.rglob("*.tmp"))


def test_a_write_that_fails_midway_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "a.TextGrid"

    def half_then_fail(tmp):
        tmp.write_text("File type = ")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        jaxalign.aligner.export.write_atomically(target, half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_a_run_still_training_is_refused_unless_a_step_is_asked_for(trained, tmp_path):
    probe = (
        "import sys, time\nfrom jaxalign.training.run_dir import hold\n"
        "with hold(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", probe, str(trained["run"])], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, lines = align(trained["run"], trained["corpus"], "--out", tmp_path / "a")
        assert code == 1 and len(lines) == 1 and "is still training" in lines[0] and "--step" in lines[0]
        code, lines = align(trained["run"], trained["corpus"], "--out", tmp_path / "b", "--step", "30")
        assert code == 0, lines
    finally:
        holder.kill()
        holder.wait()


def test_a_target_of_silence_alone_is_feasible_and_aligned(trained):
    run = load_run(trained["run"])
    features = np.random.default_rng(0).normal(size=(20, run.feature_dim)).astype(np.float32)
    silence = run.vocab.index("sil")
    (path,) = run.align([features], [np.array([silence])])
    assert path.tolist() == [0] * 20
    (path,) = run.align([features], [np.array([silence, run.vocab.index(trained["dictionary"]["hello"][0]), silence])])
    assert (path >= 0).all() and 1 in path  # the phone gets frames; the pauses may or may not


def intervals(*spans):
    return [Interval(a, b, label) for a, b, label in spans]


def test_silence_where_the_transcript_has_words_is_suspect():
    tiers = {
        "words": intervals((0.0, 0.3, "hello")),
        "phones": intervals((0.0, 0.1, "h"), (0.1, 0.2, "e"), (0.2, 0.3, "l")),
    }
    silent = np.log(np.tile([0.97, 0.01, 0.01, 0.01], (40, 1)))  # column 0: the pause
    assert suspicions(tiers, silent, silence_id=0) == ["no speech heard: 0 frames sound like speech for 3 phones"]
    speech = silent.copy()
    speech[10:20] = np.log([0.01, 0.97, 0.01, 0.01])
    assert suspicions(tiers, speech, silence_id=0) == []


def test_a_word_stretched_far_beyond_any_speaking_rate_is_suspect():
    tiers = {
        "words": intervals((0.0, 0.2, "to"), (0.2, 30.0, "walk")),
        "phones": intervals((0.0, 0.1, "t"), (0.1, 0.2, "u"), (0.2, 0.3, "w"), (0.3, 29.9, "o"), (29.9, 30.0, "k")),
    }
    speech = np.log(np.tile([0.01, 0.97, 0.01, 0.01], (3000, 1)))
    assert suspicions(tiers, speech, silence_id=0) == ["word 'walk' lasts 29.80 s for 3 phones (0.20-30.00 s)"]


def test_the_clock_puts_a_boundary_halfway_between_frame_centres():
    clock = Clock.of_front_end(type("FrontEnd", (), {"hop_ms": 10.0, "frame_ms": 25.0}))
    assert clock.boundary(0, 100, 1.0) == 0.0 and clock.boundary(100, 100, 1.0) == 1.0
    assert clock.boundary(3, 100, 1.0) == 0.0375  # 3 x 10 ms + 7.5 ms
    assert clock.boundary(99, 100, 0.99) == 0.99  # never past the audio's end
    assert Clock(0.01).boundary(3, 10, 0.1) == 0.03 and Clock(0.01).duration(10) == 0.1


def test_an_unknown_word_aligned_as_spn_is_suspect_only_beyond_its_letters_speaking_rate():
    """One spn interval stands for all of an unknown word's phones: the rate rule counts its letters."""
    speech = np.log(np.tile([0.01, 0.97, 0.01, 0.01], (1200, 1)))
    for end, suspect in (
        (1.2, []),
        (12.0, ["word 'zebra' lasts 11.80 s for 5 letters, aligned as spn (0.20-12.00 s)"]),
    ):
        tiers = {
            "words": intervals((0.0, 0.2, "to"), (0.2, end, "zebra")),
            "phones": intervals((0.0, 0.1, "t"), (0.1, 0.2, "u"), (0.2, end, "spn")),
        }
        assert suspicions(tiers, speech, silence_id=0) == suspect


class _Setup:
    """The little of an order_sync setup that the filler reads: 4 symbols (0 the pause), one state
    each, a pause one row, unweighted."""

    states_per_symbol, num_classes, optional_symbol, pause_states, pause_columns, pause_probability = 1, 4, 0, 1, 1, 0.5

    def symbol_log_posteriors(self, log_probs_TxC):
        return log_probs_TxC - np.logaddexp.reduce(log_probs_TxC, axis=1, keepdims=True)


def test_the_filler_gives_an_unknown_word_the_frames_no_neighbouring_phone_fits():
    """data.oov=spn: symbol 4 (spn) of `sil a sil spn sil b sil` gets the 4 frames that sound like
    phone 3, which the transcript does not name; the known words keep theirs, pauses stay pauses."""
    from jaxalign.aligner.unknown import align_with_filler

    heard = [0, 1, 1, 1, 3, 3, 3, 3, 2, 2, 2, 0]
    log_probs = np.log(np.full((len(heard), 4), 0.02) + 0.92 * np.eye(4)[heard])
    labels = np.array([0, 1, 0, 4, 0, 2, 0])
    positions, log_post = align_with_filler(_Setup(), log_probs, labels, silence_id=0)
    assert labels[positions].tolist() == [0, 1, 1, 1, 4, 4, 4, 4, 2, 2, 2, 0]
    assert log_post.shape == (len(heard), 5) and np.allclose(log_post[4:8, 4], np.log(0.94), atol=1e-3)
    # a penalty above what the phones lose there gives the word's frames back to its neighbours
    positions, _ = align_with_filler(_Setup(), log_probs, labels, silence_id=0, penalty=10.0)
    assert (labels[positions] == 4).sum() == 1
