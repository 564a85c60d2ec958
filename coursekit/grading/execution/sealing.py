"""The grading worker's side of the seal (:mod:`coursekit.grading.execution.kernel.seal`).

* :func:`payload`: what a kernel is handed when it starts, made from the module's source
  notebook (never from the submission): a fresh key, the code of every locked cell (tests
  with a checkpoint in front of each ``assert``, see :func:`instrument`), the names the
  solution cells bind, the modules the locked cells import.
* :func:`stub`: the code sent in place of a locked cell.
* :func:`read_verdict`: the outcome of one locked cell, from the lines the kernel wrote,
  accepted only with a valid signature, the right cell and nonce (:func:`count_forged`
  counts the others).

A test earns its points only through :func:`read_verdict`; nothing the kernel displays
counts.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.cells import cell_source, hide_hidden, is_locked_code, nbgrader_meta
from coursekit.grading.execution.kernel.seal import CHECKPOINT, PREFIX, RUNNER_NAME

#: How long to wait for a cell's signed line once the kernel has answered (the seal writes
#: it before the runner returns, so it is normally there already).
LINE_WAIT = 5.0


@dataclass
class Verdict:
    """The outcome of one locked cell."""

    status: str  # "passed" or "failed"
    ename: str = ""
    message: str = ""
    kind: str = "test"  # "test" or "given"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "ename": self.ename, "message": self.message,
                "kind": self.kind}


@dataclass
class Sealed:
    """What one kernel was handed, and what the worker keeps to check its lines."""

    key: bytes
    cells: dict[str, str]  # grade_id -> "test" or "given"
    payload: dict[str, Any]
    flags: list[str] = field(default_factory=list)  # from the seal's signed lines

    def add_flags(self, found: list[str]) -> None:
        for item in found:
            if item and item not in self.flags:
                self.flags.append(item)


class _Checkpoints(ast.NodeTransformer):
    """Put :data:`CHECKPOINT` in front of every statement of a cell, at any depth (but not
    in a class body)."""

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        if isinstance(node, ast.ClassDef):
            return node
        for name in ("body", "orelse", "finalbody"):
            stmts = getattr(node, name, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                out: list[ast.stmt] = []
                for stmt in stmts:
                    if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef,
                                             ast.ClassDef, ast.Import, ast.ImportFrom)):
                        out.append(ast.parse(CHECKPOINT).body[0])
                    out.append(stmt)
                setattr(node, name, out)
        return node


def instrument(source: str) -> str:
    """``source`` with a checkpoint in front of every statement (unchanged if it does not
    parse: it then fails in the kernel as it is). At each one the seal checks that nothing
    a test depends on changed since the test began: a library function replaced by the
    notebook's code while the test runs fails the test, even if it is put back before the
    test ends."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    tree = _Checkpoints().visit(tree)
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def bound_names(source: str) -> set[str]:
    """Names a cell binds at its top level (assignments, definitions, imports, loops)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        for sub in ast.walk(node) if not isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else ():
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
    return names


def visible_names(source: str) -> set[str]:
    """Names the visible part of a test cell binds (what students see it bind, and what later
    cells of the notebook may use): its hidden part replaced, as the release has it."""
    shown, _ = hide_hidden(source, "pass")
    return bound_names(shown)


def imported_modules(source: str) -> set[str]:
    """Modules a cell imports (``import a.b`` and ``from a.b import c`` give ``a.b``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def locked_cells(source_nb: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """grade_id -> (code, kind) of every locked code cell of a source notebook: ``test`` for a
    graded one, ``given`` for given code."""
    out: dict[str, tuple[str, str]] = {}
    for cell in source_nb.get("cells", []):
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        if cell.get("cell_type") != "code" or not gid or not is_locked_code(cell):
            continue
        code = cell_source(cell)
        if code.strip():
            out[gid] = (code, "test" if meta.get("grade") else "given")
    return out


def payload(source_notebook: Path) -> Sealed:
    """A kernel's seal for the module whose source notebook is ``source_notebook``."""
    nb = json.loads(source_notebook.read_text(encoding="utf-8"))
    cells = locked_cells(nb)
    solution_names: set[str] = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and nbgrader_meta(cell).get("solution"):
            solution_names |= bound_names(cell_source(cell))
    preload: set[str] = set()
    for code, _kind in cells.values():
        preload |= imported_modules(code)
    key = secrets.token_bytes(32)
    data = {
        "key": key.hex(),
        "cells": {gid: {"source": instrument(code) if kind == "test" else code, "kind": kind,
                        "keep": sorted(visible_names(code)) if kind == "test" else []}
                  for gid, (code, kind) in cells.items()},
        "solution_names": sorted(solution_names),
        "preload": sorted(preload),
    }
    return Sealed(key, {gid: kind for gid, (_c, kind) in cells.items()}, data)


def stub(gid: str, nonce: str) -> str:
    """The code sent to the kernel in place of the locked cell ``gid``."""
    return f"{RUNNER_NAME}({gid!r}, {nonce!r})"


def _fields(line: bytes, key: bytes) -> list[str] | None:
    """The fields of a seal line, or None if it is not signed with ``key``."""
    try:
        mac, body = line[len(PREFIX):].split(b" ", 1)
        want = hmac.new(key, body.strip(), hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(mac, want):
            return None
        return [bytes.fromhex(part).decode("utf-8", "replace")
                for part in body.strip().decode("ascii").split(":")]
    except (ValueError, UnicodeDecodeError):
        return None


def count_forged(sealed: Sealed, lines: list[bytes]) -> int:
    """How many of the seal-looking ``lines`` are not signed with the kernel's key."""
    return sum(1 for line in lines if _fields(line, sealed.key) is None)


def unasked(sealed: Sealed, lines: list[bytes], sent: set[tuple[str, str]]) -> list[str]:
    """The locked cells of the signed ``lines`` whose nonce the grader did not send: runs
    the notebook's code started itself (``sent``: the grader's (grade_id, nonce))."""
    found = []
    for line in lines:
        fields = _fields(line, sealed.key)
        if (fields and len(fields) == 8 and fields[3] != "flag"
                and (fields[1], fields[2]) not in sent):
            found.append(fields[1])
    return list(dict.fromkeys(found))


def read_flags(sealed: Sealed, lines: list[bytes]) -> None:
    """Add the flags of every signed line to ``sealed``'s: the seal writes a line the moment
    it flags something (kind ``flag``), so what the notebook's code did before it could
    sign lines itself stays flagged whatever it signs later."""
    for line in lines:
        fields = _fields(line, sealed.key)
        if fields and len(fields) == 8:
            sealed.add_flags([f for f in fields[7].split("\x1f") if f])


def read_verdict(sealed: Sealed, lines: list[bytes], gid: str, nonce: str) -> Verdict | None:
    """The verdict for the locked cell ``gid`` sent with ``nonce``, from the seal lines that
    mention the nonce; None if there is no valid one. Unsigned lines are counted as forged;
    two valid lines for one nonce are a flag (and no verdict)."""
    found: list[list[str]] = []
    for line in lines:
        fields = _fields(line, sealed.key)
        if fields is None:
            continue
        # seq, gid, nonce, kind, status, ename, message, flags
        if len(fields) != 8 or fields[1] != gid or fields[2] != nonce:
            continue
        found.append(fields)
        sealed.add_flags([f for f in fields[7].split("\x1f") if f])
    if len(found) != 1:
        if len(found) > 1:
            sealed.add_flags([f"the grader received {len(found)} outcomes for {gid}"])
        return None
    _seq, _gid, _nonce, kind, status, ename, message, _flags = found[0]
    return Verdict(status if status in ("passed", "failed") else "failed", ename, message, kind)


def nonce() -> str:
    """A fresh nonce for one locked cell."""
    return secrets.token_hex(16)


def token(nonce_text: str) -> bytes:
    """How ``nonce_text`` appears in a seal line (its field is hex-encoded)."""
    return nonce_text.encode().hex().encode()
