"""The rules of a `jaxalign-align --out` folder: what an interrupted, failed or concurrent call leaves.

- One call at a time: the folder's lock (`.lock`, as a run dir's) is held for the whole call; a
  second call into the same folder stops at once with one line naming the holder.
- Visibly incomplete until done: `INCOMPLETE` is written before the first output and removed
  last, after every file is complete. Each output file is written atomically (a temporary file,
  then a rename): a file that is there is whole, even after Ctrl-C, a kill or a full disk.
- Everything written is listed, as it is written, in `.written` (one path a line, relative to the
  folder), so `--overwrite` removes exactly what earlier calls wrote (and nothing else), and
  `--resume` knows what is done; what the closing tables (alignments.csv) need of each finished
  recording is appended to `.progress.jsonl` as it goes, so nothing done is redone.
"""

import contextlib
import json
import os
from pathlib import Path

from jaxalign.aligner.export import write_text
from jaxalign.errors import AlignmentOutputError
from jaxalign.training.run_dir import hold

INCOMPLETE = "INCOMPLETE"
WRITTEN = ".written"
STATE = ".alignment.json"  # what the outputs were made with (run, step, dictionary): --resume checks it
PROGRESS = ".progress.jsonl"  # one JSON line per finished item (what the final tables need): --resume reads it


def check_out_dir(out_dir: Path, overwrite: bool, resume: bool = False) -> None:
    """Refuses, before any model runs, a path under a file, a file, a folder that cannot be
    written, and (without `overwrite` or `resume`) a folder with anything in it; creates nothing."""
    existing = next(p for p in [out_dir, *out_dir.parents] if p.exists())
    if not existing.is_dir():
        raise AlignmentOutputError(f"--out {out_dir}: {existing} is a file, not a folder")
    if existing == out_dir and not (overwrite or resume) and any(p.name != ".lock" for p in out_dir.iterdir()):
        raise AlignmentOutputError(
            f"--out {out_dir} is not empty; pass --overwrite to replace its earlier alignments"
            + (" (it holds an INCOMPLETE alignment: --resume continues it)" if (out_dir / INCOMPLETE).exists() else "")
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AlignmentOutputError(f"--out {out_dir}: {existing} is not writable")


class OutputDir:
    """An `--out` folder held by this call (use as a context manager: `OutputDir.open`)."""

    def __init__(self, path: Path):
        self.path = path
        self._written = self._progress = None

    @classmethod
    @contextlib.contextmanager
    def open(cls, path, *, state: dict, overwrite: bool = False, resume: bool = False):
        """Holds the folder's lock; with `overwrite` removes what earlier calls wrote, with `resume`
        keeps it if it was made with the same `state` (else refuses); marks the folder INCOMPLETE.
        Yields the `OutputDir`; `finish()` marks it complete."""
        path = Path(path)
        check_out_dir(path, overwrite, resume)
        with hold(path, busy=AlignmentOutputError, rule="one jaxalign-align writes into a folder at a time"):
            out = cls(path)
            with out.errors():
                if resume and (path / STATE).is_file():
                    recorded = json.loads((path / STATE).read_text())
                    if recorded != state:
                        changed = sorted(k for k in state.keys() | recorded.keys() if state.get(k) != recorded.get(k))
                        raise AlignmentOutputError(
                            f"--resume: {path} was aligned with another {', '.join(changed)}; pass --overwrite instead"
                        )
                elif overwrite or resume:
                    out.remove_earlier()
                write_text(path / INCOMPLETE, "jaxalign-align has not finished writing this folder (interrupted or failed "
                           "if no call is running); --resume continues it, --overwrite starts again\n")  # fmt: skip
                write_text(path / STATE, json.dumps(state, indent=1, sort_keys=True) + "\n")
                out._written = open(path / WRITTEN, "a", encoding="utf-8")
                out._progress = open(path / PROGRESS, "a", encoding="utf-8")
            try:
                yield out
            finally:
                out._written.close()
                out._progress.close()

    def done(self) -> set[str]:
        """The outputs written so far (relative paths), by this call and the earlier ones it resumes."""
        path = self.path / WRITTEN
        return set(path.read_text(encoding="utf-8").split("\n")) - {""} if path.is_file() else set()

    def write(self, name: str, writer, *args) -> Path:
        """`writer(self.path / name, *args)` (an atomic writer of `jaxalign.aligner.export`), then lists it."""
        with self.errors():
            target = writer(self.path / name, *args)
            self._written.write(name + "\n")
            self._written.flush()
        return target

    def record(self, entry: dict) -> None:
        """Appends `entry` (JSON) to the progress log; call it after the item's files are written."""
        with self.errors():
            self._progress.write(json.dumps(entry) + "\n")
            self._progress.flush()

    def recorded(self) -> list[dict]:
        """The progress log's entries (an interrupted last line is dropped)."""
        path, entries = self.path / PROGRESS, []
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    entries.append(json.loads(line))
        return entries

    def finish(self) -> None:
        """Marks the folder complete: the last step of a call that wrote everything."""
        (self.path / INCOMPLETE).unlink(missing_ok=True)

    def remove_earlier(self) -> None:
        """Removes every file earlier calls listed as written, and their bookkeeping; other files stay."""
        for name in sorted(self.done()):
            target = (self.path / name).resolve()
            if self.path.resolve() in target.parents:
                target.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # the folder it was in, if that is now empty
                    target.parent.rmdir() if target.parent != self.path.resolve() else None
        for name in (WRITTEN, STATE, PROGRESS, INCOMPLETE):
            (self.path / name).unlink(missing_ok=True)

    @contextlib.contextmanager
    def errors(self):
        """An OSError while writing (a full disk, no permission) as one AlignmentOutputError line."""
        try:
            yield
        except OSError as err:
            raise AlignmentOutputError(
                f"could not write into --out {self.path}: {err.strerror or err}"
                + (f" ({err.filename})" if err.filename else "")
                + "; the folder is marked INCOMPLETE"
            ) from None
