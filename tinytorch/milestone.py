"""What the milestone notebooks use: run on your own modules, and say which module fails.

A milestone starts with::

    framework = use_framework("Milestone 2", NEEDS, reference_only=REFERENCE_ONLY)

which prints, for each module the milestone needs, whose code runs: yours (exported from
your notebook by ``python -m tinytorch.mine``) or the course's reference code. From then on
``from tinytorch.core.layers import Linear`` imports that code. Each experiment of the
milestone is a function of a :class:`Trial` that imports what it uses itself, so that it
can be run again on other code::

    result = framework.run(experiment, CLAIMS)

runs it and checks the milestone's claims. When it raises, or a claim does not hold, and
some of the modules are yours, the experiment runs again on the reference code with one
of your modules at a time (a module of yours whose reference code is not published stays
in every run); the module with which it fails is named, with your result beside the
reference's. An error anywhere else in the notebook that comes from your code says which
of your modules raised it.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tinytorch.mine import (
    MINE,
    Choice,
    framework_files,
    install,
    loaded,
    mine_folder,
    module_label,
    reference_file,
    student_repository,
)


class MilestoneError(Exception):
    """A milestone cannot go on; the message says why, in place of a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return str(self).splitlines()


@dataclass(frozen=True)
class Claim:
    """What a milestone says its experiment shows: ``result[key] <op> value``."""

    key: str
    op: str  # "==", ">=" or "<="
    value: float | int | bool
    says: str

    def holds(self, result: dict[str, Any]) -> bool:
        """True when the result has the key and it meets the claim."""
        got = result.get(self.key)
        if got is None or (isinstance(got, float) and math.isnan(got)):
            return False
        if self.op == ">=":
            return bool(got >= self.value)
        if self.op == "<=":
            return bool(got <= self.value)
        return bool(got == self.value)

    def __str__(self) -> str:
        return f"{self.says} ({self.key} {self.op} {_value(self.value)})"


@dataclass
class Trial:
    """One run of an experiment: on your framework (``main``), or again while looking for
    the module that fails (quiet, with a scratch folder of its own)."""

    name: str
    main: bool = True
    scratch: Path | None = None
    quiet: bool = False

    def say(self, message: str) -> None:
        """Print a progress line (only in the main run, and not when quiet)."""
        if self.main and not self.quiet:
            print(message, flush=True)


@dataclass
class Outcome:
    """What one run of an experiment gave."""

    result: dict[str, Any] | None
    missed: list[Claim] = field(default_factory=list)
    error: BaseException | None = None
    raised_in: str | None = None  # the module of yours whose code raised
    where: str | None = None  # file, line and code of that

    @property
    def ok(self) -> bool:
        return self.error is None and not self.missed

    def numbers(self, claims: Iterable[Claim]) -> str:
        """The claimed quantities of this run, or the error."""
        if self.error is not None:
            return f"raised {type(self.error).__name__}: {_short(self.error)}"
        assert self.result is not None
        return ", ".join(f"{c.key} {_value(self.result.get(c.key))}" for c in claims)


@dataclass
class Verdict:
    """Which modules of yours the milestone blames: ``how`` is ``none`` (the claims hold),
    ``raised``, ``misbehaved``, ``together`` (each alone is fine, together they fail) or
    ``reference`` (the reference code alone fails: not yours to fix)."""

    how: str
    culprits: list[str]
    message: str


def _value(value: Any) -> str:
    """A number as the milestones print it: 0.9721, 0.75, 1.00."""
    if isinstance(value, float):
        if value != value:
            return "nan"
        text = f"{value:.4f}"
        while text.endswith("0") and len(text.split(".")[1]) > 2:
            text = text[:-1]
        return text
    return str(value)


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0][:300] if text else "").strip()


def _span(folders: list[str]) -> str:
    return ", ".join(f[:2] for f in folders) if folders else "none"


class Framework:
    """The modules a milestone runs on (see the module's docstring)."""

    def __init__(self, title: str, choices: dict[str, Choice], reference_only: bool,
                 mine: Path, quiet: bool = False) -> None:
        self.title = title
        self.choices = choices
        self.reference_only = reference_only
        self.mine = mine
        self.quiet = quiet
        self.verdicts: list[Verdict] = []

    @property
    def yours(self) -> list[str]:
        """The modules whose code is yours in this framework."""
        return [f for f, c in self.choices.items() if c.whose == "yours"]

    def files(self) -> dict[str, Path]:
        """folder -> file of each module of this framework."""
        return {f: c.path for f, c in self.choices.items() if c.path is not None}

    def table(self) -> str:
        """Whose code runs, module by module."""
        lines = [f"{self.title} runs on:"]
        for folder, choice in self.choices.items():
            lines.append(f"  {folder[:2]} {folder[3:]:<12} {choice.whose:<9} {choice.note}")
        if student_repository() is None:
            lines.append("(not in a student repository: the course's reference code)")
        elif self.reference_only:
            lines.append("REFERENCE_ONLY is set: the reference code wherever it is published.")
        else:
            lines.append("`python -m tinytorch.mine` makes a module of yours part of it; "
                         "REFERENCE_ONLY = True runs the reference code alone.")
        return "\n".join(lines)

    def blame(self, tb: TracebackType | None) -> tuple[str | None, str | None]:
        """(module, where) of the innermost frame of a traceback that is in your code."""
        names = {f[3:]: f for f in self.choices}
        mine = self.mine.resolve()
        for frame in reversed(traceback.extract_tb(tb)):
            path = Path(frame.filename)
            if path.suffix == ".py" and path.parent.resolve() == mine and path.stem in names:
                where = (f"{MINE}/{path.name}, line {frame.lineno}, in {frame.name}: "
                         f"{(frame.line or '').strip()}")
                return names[path.stem], where
        return None, None

    # -- running experiments -------------------------------------------------------------------

    def _attempt(self, experiment: Callable[[Trial], dict[str, Any]], claims: list[Claim],
                 trial: Trial, files: dict[str, Path] | None) -> Outcome:
        try:
            if files is None:
                result = experiment(trial)
            else:
                with loaded(files):
                    result = experiment(trial)
        except Exception as exc:  # the student's code: any error at all
            folder, where = self.blame(exc.__traceback__)
            return Outcome(None, error=exc, raised_in=folder, where=where)
        if not isinstance(result, dict):
            raise TypeError(f"an experiment returns a dict of its numbers, got "
                            f"{type(result).__name__}")
        return Outcome(result, missed=[c for c in claims if not c.holds(result)])

    def run(self, experiment: Callable[[Trial], dict[str, Any]],
            claims: Iterable[Claim]) -> dict[str, Any]:
        """Run ``experiment`` on this framework and check ``claims`` (see the module's
        docstring); its result. Raises MilestoneError when it raised."""
        claims = list(claims)
        started = time.perf_counter()
        first = self._attempt(experiment, claims, Trial("yours", quiet=self.quiet), None)
        if first.result is not None:
            first.result.setdefault("seconds", time.perf_counter() - started)
        if first.ok:
            assert first.result is not None
            if not self.quiet:
                print(f"claims hold: {first.numbers(claims)}", flush=True)
            self.verdicts.append(Verdict("none", [], "the claims hold"))
            return first.result
        verdict = self._diagnose(experiment, claims, first)
        self.verdicts.append(verdict)
        if first.error is not None:
            raise MilestoneError(verdict.message) from None
        print(verdict.message, flush=True)
        assert first.result is not None
        return first.result

    def _diagnose(self, experiment: Callable[[Trial], dict[str, Any]], claims: list[Claim],
                  first: Outcome) -> Verdict:
        """Find the module of yours with which the experiment fails. Prints what it does;
        the verdict's message is the conclusion."""
        if first.error is not None:
            print(f"On this framework the experiment raised {type(first.error).__name__}: "
                  f"{_short(first.error)}", flush=True)
            if first.raised_in:
                print(f"  in your code, {module_label(first.raised_in)}: {first.where}",
                      flush=True)
        else:
            assert first.result is not None
            print("On this framework the experiment misses its claims: " + "; ".join(
                f"{c} got {_value(first.result.get(c.key))}" for c in first.missed), flush=True)
        yours = self.yours
        replaceable = [f for f in yours if reference_file(f) is not None]
        fixed = [f for f in yours if f not in replaceable]
        failed = "raised" if first.error is not None else "misbehaved"
        if not replaceable:
            if fixed:
                names = ", ".join(module_label(f) for f in fixed)
                return Verdict(failed, fixed, f"{names.capitalize()}, yours, {failed}: the "
                               "other modules are the course's reference code.")
            return Verdict("reference", [], "This is the course's reference code alone: tell "
                           "your instructor.")
        print("Looking for the module: the same experiment on the reference code with one of "
              "your modules at a time" + (f" (yours in every run, no reference published: "
                                          f"{_span(fixed)})" if fixed else "") + ":", flush=True)
        base_files = self.files()
        for folder in replaceable:
            base_files[folder] = reference_file(folder)  # type: ignore[assignment]
        base = self._quiet(experiment, claims, "reference", base_files)
        self._report("reference" + (f" + yours {_span(fixed)}" if fixed else ""), base, claims)
        if not base.ok:
            if fixed:
                names = ", ".join(module_label(f) for f in fixed)
                how = "raised" if base.error is not None else "misbehaved"
                return Verdict(how, fixed, f"{names.capitalize()}, yours, {how}: with the "
                               "reference code for every other module the experiment fails "
                               f"too ({base.numbers(claims)}).")
            return Verdict("reference", [], "The course's reference code alone fails "
                           f"({base.numbers(claims)}): tell your instructor.")
        failing: list[tuple[str, Outcome]] = []
        for folder in replaceable:
            files = dict(base_files)
            files[folder] = self.choices[folder].path  # type: ignore[assignment]
            alone = self._quiet(experiment, claims, folder, files)
            self._report(f"{folder[:2]} {folder[3:]}: yours", alone, claims)
            if not alone.ok:
                failing.append((folder, alone))
        if not failing:
            names = ", ".join(module_label(f) for f in replaceable)
            return Verdict("together", replaceable, "Each of your modules works with the "
                           f"reference code for the others, but together they fail: {names}.")
        lines, how = [], "misbehaved"
        for folder, alone in failing:
            if alone.error is not None:
                how = "raised"
                verb = f"raised {type(alone.error).__name__}: {_short(alone.error)}"
                if alone.where:
                    verb += f"\n  at {alone.where}"
            else:
                verb = "misbehaved; with it these claims fail: " + "; ".join(
                    str(c) for c in alone.missed)
            lines.append(f"{module_label(folder).capitalize()} {verb}")
            lines.append(f"  yours:     {alone.numbers(claims)}")
            lines.append(f"  reference: {base.numbers(claims)}")
        return Verdict(how, [f for f, _ in failing], "\n".join(lines))

    def _quiet(self, experiment: Callable[[Trial], dict[str, Any]], claims: list[Claim],
               name: str, files: dict[str, Path]) -> Outcome:
        with tempfile.TemporaryDirectory(prefix="milestone-") as scratch:
            return self._attempt(experiment, claims, Trial(name, False, Path(scratch)), files)

    @staticmethod
    def _report(name: str, outcome: Outcome, claims: list[Claim]) -> None:
        state = "ok" if outcome.ok else ("raised" if outcome.error else "misses")
        print(f"  {name:<28} {state:<7} {outcome.numbers(claims)}", flush=True)

    def result_line(self) -> str:
        """``yours=01,03 culprits=03_layers`` for a milestone's RESULT line."""
        culprits = sorted({f for v in self.verdicts for f in v.culprits})
        return (f"yours={_span(self.yours).replace(', ', ',')} "
                f"culprits={','.join(culprits) or 'none'}")


# -- errors elsewhere in the notebook ----------------------------------------------------------

_current: list[Framework] = []


def _note(tb: TracebackType | None) -> str | None:
    if not _current:
        return None
    folder, where = _current[-1].blame(tb)
    if folder is None:
        return None
    return f"This error comes from your code, {module_label(folder)}: {where}"


def _ipython_handler(shell: Any, etype: type, value: BaseException, tb: TracebackType,
                     tb_offset: int | None = None) -> None:
    note = None if isinstance(value, MilestoneError) else _note(tb)
    if note:
        print(note, file=sys.stderr, flush=True)
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)


_previous_hook = sys.excepthook


def _excepthook(etype: type[BaseException], value: BaseException,
                tb: TracebackType | None) -> None:
    if isinstance(value, MilestoneError):
        print(value, file=sys.stderr)
        return
    note = _note(tb)
    if note:
        print(note, file=sys.stderr)
    _previous_hook(etype, value, tb)


def _hook_errors() -> None:
    shell = None
    if "IPython" in sys.modules:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((Exception,), _ipython_handler)
    else:
        sys.excepthook = _excepthook


def use_framework(title: str, needs: Iterable[str], reference_only: bool = False,
                  quiet: bool = False) -> Framework:
    """Choose and import the code a milestone runs on (see the module's docstring), print
    which it is (unless ``quiet``), and return it. MilestoneError when a module it needs is
    not available or does not import."""
    needs = list(needs)
    mine = mine_folder()
    framework = Framework(title, framework_files(needs, reference_only, mine), reference_only,
                          mine, quiet)
    if not quiet:
        print(framework.table(), flush=True)
    _current[:] = [framework]
    _hook_errors()
    missing = [c for c in framework.choices.values() if c.whose == "missing"]
    if missing:
        raise MilestoneError(f"{title} cannot run yet: "
                             + "; ".join(f"{module_label(c.folder)}: {c.note}" for c in missing))
    try:
        install(framework.files())
    except Exception as exc:  # the student's code: any error at all
        folder, where = framework.blame(exc.__traceback__)
        whose = (f"your {module_label(folder)}" if folder
                 else "one of its modules")
        raise MilestoneError(f"{title}: {whose} does not import: {type(exc).__name__}: "
                             f"{_short(exc)}" + (f"\n  at {where}" if where else "")) from None
    return framework
