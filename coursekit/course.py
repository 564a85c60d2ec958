"""The course layout: where modules, generated notebooks and the package live."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MODULE_DIR_RE = re.compile(r"^(\d\d)_([a-z][a-z0-9_]*)$")

CONFIG_FILE = "grader_config.py"


class CourseError(Exception):
    """A user-facing error: the message says what is wrong and where."""


@dataclass(frozen=True)
class Module:
    """One numbered module: ``modules/NN_name/name.py``."""

    number: str
    name: str
    root: Path

    @property
    def folder(self) -> str:
        """The folder and assignment name, e.g. ``01_tensor``."""
        return f"{self.number}_{self.name}"

    @property
    def source(self) -> Path:
        """The hand-written module file."""
        return self.root / "modules" / self.folder / f"{self.name}.py"

    @property
    def rel_source(self) -> str:
        """The module file relative to the course root (for messages)."""
        return f"modules/{self.folder}/{self.name}.py"

    @property
    def notebook_name(self) -> str:
        """File name of the notebook in source_notebooks/ and release/."""
        return f"{self.name}.ipynb"

    @property
    def source_notebook(self) -> Path:
        """The nbgrader source notebook."""
        return self.root / "source_notebooks" / self.folder / self.notebook_name

    @property
    def release_notebook(self) -> Path:
        """The student notebook made by ``course release``."""
        return self.root / "release" / self.folder / self.notebook_name

    @property
    def export(self) -> Path:
        """The reference package file exported from the module."""
        return self.root / "tinytorch" / "core" / f"{self.name}.py"


class Course:
    """A course root: a folder with ``modules/`` and ``grader_config.py``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        if not (self.root / "modules").is_dir():
            raise CourseError(f"{self.root}: not a course root (no modules/ folder)")

    @classmethod
    def find(cls, start: Path | str | None = None) -> Course:
        """The course root containing ``start`` (default: the current folder)."""
        here = Path(start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / "modules").is_dir() and (folder / CONFIG_FILE).is_file():
                return cls(folder)
        raise CourseError(
            f"{here}: no course root found (a folder with modules/ and {CONFIG_FILE}); "
            "run inside the course or pass --root"
        )

    @property
    def config_file(self) -> Path:
        """The nbgrader configuration of the course."""
        return self.root / CONFIG_FILE

    def module_folders(self) -> list[Path]:
        """Every ``modules/NN_name`` folder, in order (with or without its file)."""
        return sorted(
            p for p in (self.root / "modules").iterdir()
            if p.is_dir() and MODULE_DIR_RE.match(p.name)
        )

    def modules(self) -> list[Module]:
        """Every module whose ``modules/NN_name/name.py`` exists, in order."""
        found = []
        for folder in self.module_folders():
            number, name = MODULE_DIR_RE.match(folder.name).groups()  # type: ignore[union-attr]
            module = Module(number, name, self.root)
            if module.source.is_file():
                found.append(module)
        return found

    def missing_files(self) -> list[str]:
        """Module folders without their ``name.py`` (work in progress)."""
        missing = []
        for folder in self.module_folders():
            _, name = MODULE_DIR_RE.match(folder.name).groups()  # type: ignore[union-attr]
            if not (folder / f"{name}.py").is_file():
                missing.append(f"modules/{folder.name}/{name}.py")
        return missing

    def select(self, wanted: list[str] | None) -> list[Module]:
        """The modules named by ``wanted`` ("01", "1", "01_tensor" or "tensor"); all if empty."""
        modules = self.modules()
        if not wanted:
            return modules
        chosen: list[Module] = []
        for item in wanted:
            key = item.strip()
            number = f"{int(key):02d}" if key.isdigit() else None
            match = [m for m in modules if key in (m.folder, m.name) or m.number == number]
            if not match:
                known = ", ".join(m.folder for m in modules) or "none"
                folder_only = [
                    f for f in self.missing_files()
                    if key in f.split("/")[1] or f.split("/")[1][:2] == number
                ]
                hint = f" ({folder_only[0]} does not exist yet)" if folder_only else ""
                raise CourseError(f"--module {item}: no such module{hint}; modules: {known}")
            for m in match:
                if m not in chosen:
                    chosen.append(m)
        return sorted(chosen, key=lambda m: m.folder)
