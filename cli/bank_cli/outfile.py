"""An ``--out`` file that appears only when the run completes: lines go to
``NAME.partial`` beside it, renamed into place at the end (``txn process``,
``profile simulate``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class CompletedFile:
    def __init__(self, target: Path | None) -> None:
        self.target = target
        self.partial = target.with_name(target.name + ".partial") if target else None
        self.handle: Any = self.partial.open("w", encoding="utf-8") if self.partial else None

    def write(self, line: str) -> None:
        if self.handle is not None:
            self.handle.write(line)

    def close(self, complete: bool, *, discard: bool = False) -> None:
        """Rename into place if ``complete``; else leave the partial file
        (or delete it with ``discard``)."""
        if self.handle is None:
            return
        self.handle.close()
        if complete:
            os.replace(self.partial, self.target)  # type: ignore[arg-type]
        elif discard:
            self.partial.unlink(missing_ok=True)  # type: ignore[union-attr]
