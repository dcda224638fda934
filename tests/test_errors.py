"""One error family: every `JaxalignError` subclass reaches the user of both commands as one line and
exit status 1, with no traceback."""

import pytest

import jaxalign.aligner.corpus
import jaxalign.aligner.sequences
from jaxalign import errors
from jaxalign.aligner import cli
from jaxalign.train import report_failure


def family(cls) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *family(sub)]
    return sorted(set(found), key=lambda c: c.__name__)


ERRORS = family(errors.JaxalignError)


def test_every_user_facing_error_class_is_in_the_family_and_lives_in_errors_py():
    named = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and name.endswith(("Error", "Busy", "Refused", "Diverged"))
    }
    assert named - {"JaxalignError"} == {c.__name__ for c in ERRORS}
    assert all(c.__module__ == "jaxalign.errors" for c in ERRORS)


@pytest.mark.parametrize("error", ERRORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("target", ["corpus", "npz"])
def test_jaxalign_align_prints_any_of_them_in_one_line(error, target, tmp_path, monkeypatch, capsys):
    def raising(*args, **kwargs):
        raise error("what is wrong, and what to do")

    monkeypatch.setattr(jaxalign.aligner.corpus, "align_corpus_dir", raising)
    monkeypatch.setattr(jaxalign.aligner.sequences, "align_file", raising)
    data = tmp_path / "corpus"
    if target == "corpus":
        data.mkdir()
    else:
        data = tmp_path / "data.npz"
        data.write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(tmp_path / "run"), str(data), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == ["jaxalign-align: error: what is wrong, and what to do"]


@pytest.mark.parametrize("error", ERRORS, ids=lambda c: c.__name__)
def test_jaxalign_train_prints_any_of_them_in_one_line(error, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report_failure(error("what is wrong"), tmp_path, first=True, multirun=False)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"jaxalign-train: what is wrong (run dir {tmp_path})"]
    refused = error in (errors.ResumeRefused, errors.RunDirBusy)  # another run's dir: left untouched
    assert (tmp_path / "FAILED").exists() is not refused


def test_jaxalign_train_keeps_the_traceback_of_a_bug(tmp_path):
    try:
        raise KeyError("a bug")
    except KeyError as err:  # as in jaxalign-train: reported while it is being handled
        with pytest.raises(KeyError):
            report_failure(err, tmp_path, first=True, multirun=False)
    assert "Traceback" in (tmp_path / "FAILED").read_text()
