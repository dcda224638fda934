"""experiments/bench_mfa.py: the one scorer of both aligners on hand-made TextGrids (MFA's labels
normalised, pauses inserted and missed, errors at pause edges), finding MFA, and one run end to end
with MFA left out (CI never needs MFA)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxalign.data.textgrid import write_textgrid

REPO = Path(__file__).resolve().parents[2]


def _script(name):
    spec = importlib.util.spec_from_file_location(f"_experiments_{name}", REPO / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _script("bench_mfa")

# Speaker s1: words a b (no pause between them) c (after a 200 ms pause); speaker s2: x, a 200 ms pause,
# y; and z, which the aligner wrote as MFA 3.4.3 writes a word the dictionary lacks (its spelling, spn).
TRUTH = {
    "s1/u1": {
        "words": [(0.1, 0.5, "a"), (0.5, 1.0, "b"), (1.2, 1.6, "c")],
        "phones": [(0.1, 0.3, "O"), (0.3, 0.5, "t"), (0.5, 1.0, "o"), (1.2, 1.6, "k")],
    },
    "s2/u1": {"words": [(0.1, 0.4, "x"), (0.6, 0.9, "y")], "phones": [(0.1, 0.4, "I"), (0.6, 0.9, "i")]},
    "s2/u2": {"words": [(0.1, 0.4, "z")], "phones": [(0.1, 0.4, "z")]},
}
# Upper-case words here to check the case folding, pauses empty (MFA 3.4.3) or `sil` / `sp` / `<eps>`.
ALIGNED = {
    "s1/u1": {  # a 20 ms pause inserted between a and b; c starts 50 ms late
        "words": [(0.0, 0.12, "<eps>"), (0.12, 0.45, "A"), (0.47, 1.0, "B"), (1.25, 1.6, "C")],
        "phones": [
            (0.0, 0.12, "sil"),
            (0.12, 0.3, "O"),
            (0.3, 0.45, "t"),
            (0.45, 0.47, "sp"),
            (0.47, 1.0, "o"),
            (1.0, 1.25, "sil"),
            (1.25, 1.6, "k"),
        ],
    },  # fmt: skip
    "s2/u1": {  # the pause missed: x runs on to where y starts
        "words": [(0.1, 0.5, "x"), (0.5, 0.9, "y")],
        "phones": [(0.1, 0.5, "I"), (0.5, 0.9, "i")],
    },
    "s2/u2": {"words": [(0.1, 0.4, "Z")], "phones": [(0.1, 0.4, "spn")]},
}


def _write(root, grids):
    for rec, tiers in grids.items():
        write_textgrid(root / f"{rec}.TextGrid", tiers, 2.0)


@pytest.fixture
def scored(tmp_path):
    _write(tmp_path / "truth", TRUTH)
    _write(tmp_path / "aligned", ALIGNED)
    return tmp_path, bench.score(tmp_path / "aligned", tmp_path / "truth")


def test_the_scorer_normalises_mfa_labels_and_measures_every_boundary(scored):
    _, got = scored
    words, phones = got["tiers"]["words"], got["tiers"]["phones"]
    # pauses dropped, words lower-cased, phones not (O and o differ); spn stays, so z's phones do not compare
    assert (words["recordings"], words["label_mismatches"], words["missing"]) == (3, 0, 0)
    assert (phones["recordings"], phones["label_mismatches"]) == (2, 1)
    signed = [0.02, -0.05, -0.03, 0, 0.05, 0, 0, 0.1, -0.1, 0, 0, 0]  # a, b, c; x, y; z: aligned - true
    assert words["boundaries"] == 12
    assert words["within_10ms"] == pytest.approx(0.5) and words["within_20ms"] == pytest.approx(7 / 12)
    assert words["within_50ms"] == pytest.approx(10 / 12)
    assert words["mean_abs_ms"] == pytest.approx(1000 * sum(map(abs, signed)) / 12)
    assert words["median_abs_ms"] == pytest.approx(10) and words["median_signed_ms"] == pytest.approx(0)
    assert phones["boundaries"] == 12 and phones["within_20ms"] == pytest.approx(7 / 12)


def test_pause_edges_and_pauses_inserted_and_missed(scored):
    _, got = scored
    edges = got["word_edges"]
    assert edges["after_pause"]["boundaries"] == 2  # c (50 ms late) and y (100 ms early)
    assert edges["after_pause"]["median_signed_ms"] == pytest.approx(-25)
    assert edges["after_pause"]["within_20ms"] == 0
    assert edges["before_pause"]["median_signed_ms"] == pytest.approx(50)  # b on time, x 100 ms late
    assert edges["before_pause"]["within_20ms"] == 0.5
    assert edges["inside_speech"]["boundaries"] == 2 and edges["inside_speech"]["median_signed_ms"] == pytest.approx(
        -40
    )
    assert edges["utterance_start"]["boundaries"] == edges["utterance_end"]["boundaries"] == 3
    assert edges["utterance_start"]["median_signed_ms"] == pytest.approx(0)
    assert edges["utterance_start"]["within_20ms"] == 1
    pauses = got["pauses"]
    assert pauses["junctions_without_pause"] == 1 and pauses["inserted"] == 1
    assert pauses["inserted_median_ms"] == pytest.approx(20)
    assert pauses["true_pauses"] == 2 and pauses["missed"] == 0.5
    s1, s2 = got["speakers"]["s1"], got["speakers"]["s2"]
    assert s1["pauses"]["missed"] == 0 and s2["pauses"]["missed"] == 1 and s2["pauses"]["inserted"] is None
    assert s1["tiers"]["words"]["boundaries"] == s2["tiers"]["words"]["boundaries"] == 6
    assert s1["tiers"]["phones"]["label_mismatches"] == 0 and s2["tiers"]["phones"]["label_mismatches"] == 1


def test_the_scorer_agrees_with_corpus_reports_boundary_agreement(scored):
    """An independent count: corpus_report.report (`boundary_agreement`) on the same TextGrids, with the
    words already lower-case, gives the same shares."""
    root, got = scored
    lower = {
        rec: {**tiers, "words": [(b, e, w.lower()) for b, e, w in tiers["words"]]} for rec, tiers in ALIGNED.items()
    }
    _write(root / "lower", lower)
    ref = _script("corpus_report").report(root / "lower", root / "truth", tolerance=0.02, ignore=bench.PAUSE_LABELS)
    for tier in ("words", "phones"):
        assert got["tiers"][tier]["within_20ms"] == pytest.approx(ref["tiers"][tier]["within_tolerance"])
        assert got["tiers"][tier]["median_abs_ms"] == pytest.approx(ref["tiers"][tier]["median_error_ms"])


def test_the_truth_against_itself_is_exact(tmp_path):
    """Also with the spoken pronunciations: a, spoken `O t`, is listed second."""
    _write(tmp_path / "truth", TRUTH)
    spoken = {"s1/u1": [("a", "O t"), ("b", "o"), ("c", "k")]}
    dictionary = {"a": ["O d", "O t"], "b": ["o"], "c": ["k"]}
    got = bench.score(tmp_path / "truth", tmp_path / "truth", spoken, dictionary)
    assert got["tiers"]["words"]["within_10ms"] == 1 and got["tiers"]["words"]["label_mismatches"] == 0
    assert got["pauses"]["inserted"] == 0 and got["pauses"]["missed"] == 0
    prons = got["pronunciations"]
    assert prons["occurrences"] == 1 and prons["aligned_is_spoken"] == 1 and prons["first_listed_is_spoken"] == 0


def test_mfa_is_found_on_path_or_by_the_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert bench.find_mfa(None) is None and bench.find_mfa("none") is None
    fake = tmp_path / "mfa"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert bench.find_mfa(None) == str(fake) and bench.find_mfa(str(fake)) == str(fake)
    with pytest.raises(SystemExit, match="--mfa"):
        bench.find_mfa(str(tmp_path / "missing"))


def test_a_step_is_measured_and_its_failure_said_in_one_line(tmp_path):
    """A child that allocates 100 MB in a grandchild, spins, and fails: its CPU and the grandchild's
    memory are counted, and the failure names the log's error line."""
    code = (
        "import subprocess, sys, time\n"
        "subprocess.run([sys.executable, '-c', 'b = bytearray(100 * 2**20); b[::4096] = b\"x\" * len(b[::4096])'])\n"
        "t = time.process_time()\nwhile time.process_time() - t < 0.2: pass\n"
        "print('ERROR: the dictionary lacks zebra')\nprint('exiting')\nsys.exit(3)\n"
    )
    got = bench.run_measured([sys.executable, "-c", code], tmp_path / "step" / "train.log", dict(os.environ))
    assert got["exit_status"] == 3 and got["cpu_s"] >= 0.2 and got["wall_s"] >= got["cpu_s"] * 0.5
    assert got["peak_rss_mb"] >= 100
    said = bench.failure("mfa train", got, tmp_path / "step" / "train.log")
    assert (
        said
        == "mfa train failed (exit status 3): ERROR: the dictionary lacks zebra (log: step/train.log in the work folder)"
    )


@pytest.mark.slow
def test_end_to_end_without_mfa(tmp_path):
    """A tiny espeak corpus, jaxalign trained 20 steps, MFA absent from PATH: jaxalign's rows, MFA's one line."""
    from jaxalign.data.espeak_corpus import write_espeak_corpus

    write_espeak_corpus(tmp_path / "c", speakers=2, utterances_per_speaker=6, sample_rate=16000, seed=0)
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", PATH=os.path.dirname(sys.executable))
    env.pop("XLA_FLAGS", None)  # one CPU device, as a user's run
    overrides = ["trainer.steps=20", "model.hidden=16", "trainer.batch_size=8", "trainer.progress=false"]
    cmd = [
        sys.executable,
        str(REPO / "experiments" / "bench_mfa.py"),
        str(tmp_path / "c"),
        "--work",
        str(tmp_path / "w"),
    ]
    cmd += ["--json", str(tmp_path / "out.json"), *(a for o in overrides for a in ("--jaxalign-override", o))]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "mfa: skipped: neither mfa-peer nor mfa on PATH" in done.stdout
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["aligners"]["mfa"] == {"skipped": "skipped: neither mfa-peer nor mfa on PATH; give --mfa PATH"}
    row = result["aligners"]["jaxalign"]
    assert row["train"]["exit_status"] == row["align"]["exit_status"] == 0
    assert row["train"]["wall_s"] > 0 and row["train"]["cpu_s"] > 0 and row["align"]["peak_rss_mb"] > 0
    words = row["accuracy"]["tiers"]["words"]
    assert words["recordings"] + words["label_mismatches"] == result["recordings"] == 12 and words["boundaries"] > 0
    assert set(row["accuracy"]["speakers"]) == {"en-us", "en-us_m3"}
    assert (tmp_path / "w" / "jaxalign" / "aligned" / "en-us" / "en-us_0000.TextGrid").is_file()
    assert "| words within 10/20/50 ms (%)" in done.stdout and str(tmp_path) not in json.dumps(result)
