import os

import pytest

# Small fake-device count so multi-device code paths can be exercised on CPU; set before JAX starts.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A tiny data=corpus run (k = 2) on 2 speakers x 6 espeak utterances plus the recordings that
    cannot be used (`tests.corpora.make_trained_corpus_run`), shared by every test of the session."""
    from tests.corpora import make_trained_corpus_run

    return make_trained_corpus_run(tmp_path_factory.mktemp("espeak"))
