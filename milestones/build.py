"""Build the milestone notebooks from their percent-format sources.

Every milestone is one Jupytext percent-format file, `milestones/NN_name/stem.py`; its
notebook `milestones/NN_name/stem.ipynb` is generated from it and committed, without
outputs. The conversion is deterministic: cell ids are `cell-000`, `cell-001`, ...,
and only the kernel's name is kept as notebook metadata, so building twice gives the
same bytes.

    python milestones/build.py           # write the notebooks that changed
    python milestones/build.py --check   # exit 1 and name them if any is out of date
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import jupytext
import nbformat

MILESTONES = Path(__file__).resolve().parent


def sources(folder: Path = MILESTONES) -> list[Path]:
    """The milestone sources: `NN_name/stem.py` under `folder`, in order."""
    found = folder.glob("[0-9][0-9]_*/*.py")
    return sorted(path for path in found if not path.name.startswith("_"))


def notebook_path(source: Path) -> Path:
    """Where the notebook of `source` lives: next to it, same stem, `.ipynb`."""
    return source.with_suffix(".ipynb")


def notebook_text(source: Path) -> str:
    """The canonical notebook JSON of a percent-format source (no outputs, stable ids)."""
    parsed = jupytext.reads(source.read_text(encoding="utf-8"), fmt="py:percent")
    kernelspec = parsed.metadata.get("kernelspec", {})
    nb = nbformat.v4.new_notebook()
    nb.metadata = nbformat.from_dict({
        "kernelspec": {
            "display_name": kernelspec.get("display_name", "Python 3 (ipykernel)"),
            "language": kernelspec.get("language", "python"),
            "name": kernelspec.get("name", "python3"),
        },
        "language_info": {"name": kernelspec.get("language", "python")},
    })
    for i, cell in enumerate(parsed.cells):
        if cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
        else:
            new = nbformat.v4.new_code_cell(cell.source)
        new["id"] = f"cell-{i:03d}"
        nb.cells.append(new)
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def stale(folder: Path = MILESTONES) -> list[Path]:
    """Notebooks that are missing or differ from what their source gives."""
    out = []
    for source in sources(folder):
        target = notebook_path(source)
        if not target.is_file() or target.read_text(encoding="utf-8") != notebook_text(source):
            out.append(target)
    return out


def build(folder: Path = MILESTONES) -> list[Path]:
    """Write every notebook that is missing or out of date; return the paths written."""
    written = []
    for source in sources(folder):
        target = notebook_path(source)
        text = notebook_text(source)
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: build, or check with --check."""
    parser = argparse.ArgumentParser(description="Build the milestone notebooks.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a notebook is missing or out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"out of date: {path.relative_to(MILESTONES.parent)}")
        if out_of_date:
            print("run: python milestones/build.py")
            return 1
        print(f"{len(sources())} milestone notebooks in sync")
        return 0
    written = build()
    for path in written:
        print(f"wrote {path.relative_to(MILESTONES.parent)}")
    print(f"{len(sources())} milestone notebooks, {len(written)} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
