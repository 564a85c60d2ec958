"""The sealed test runner: verdicts and flags that a submission's code cannot forge.

Runs inside a grading kernel, where the student's code and the tests share one interpreter.
Nothing the kernel prints or displays decides a grade. For every cell the notebook's author
locked (given code and tests), the grader sends ``__grader_run__("grade_id", "nonce")``
instead of the cell's code; the runner asks the *seal* for the cell's code, runs it and
reports the outcome. The seal is a Python audit hook (PEP 578): once added it cannot be
removed, it is called by the interpreter itself, and nothing refers to it that the
notebook's code can reach. It holds what must stay out of that code's reach:

* the code of the locked cells, hidden tests included, handed to the kernel when it starts
  (never in a message, the notebook's history, ``linecache`` or a variable);
* a key known only to it and the grading worker: each outcome goes to the worker as one
  line on the kernel's original standard output, with an HMAC-SHA256 under that key; a line
  the notebook's code writes there cannot carry a valid one;
* a snapshot of the library state tests depend on (NumPy, ``math``, builtins, the reference
  package...: every module dictionary and class dictionary), taken before any of the
  notebook's code ran, and the names the notebook's given cells bound.

A test earns its points only if the seal saw *its own* code run from the runner's frame (the
interpreter's ``exec`` event for the very code object it compiled) and return without an
exception. Before the test runs, the seal puts back the library state, the given names and
the builtins a test cell uses, the ``sys`` hooks and the signal handlers; at every
checkpoint the grader put in front of each statement (an expression that raises an audit
event by itself, with no name the notebook could rebind) and when the test ends, it checks
that state again: a change made while the test ran fails the test. Every change it puts
back, every refused or watched operation is a flag for review, carried in the signed lines.

A second audit hook refuses what would let the notebook's code reach the seal or rewrite the
interpreter under it: ``ctypes``, the garbage collector's object lists, trace and profile
functions, other audit hooks, other threads' frames, replacing a function's code. Frames
the notebook's code asks for (``sys._getframe``, a traceback's or a generator's frame) are
flagged: with a frame it could read the code of the test that called it.

What this cannot do: the kernel's memory is the student's. NumPy can read and write raw
memory (``as_strided`` with made-up strides, addresses from ``id``); code that does so can
reach anything, the key included. Such code, and the other ways in named above, are flagged
by reading the submitted source (:mod:`coursekit.grading.execution.flags`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: What the grader puts in front of every statement of a test (see the docstring).
CHECKPOINT = '(lambda: "\\x00coursekit-checkpoint").__code__'
CHECKPOINT_MARK = "\x00coursekit-checkpoint"
#: The start of a line the seal writes (then: MAC, a space, the fields in hex joined by ":").
PREFIX = b"\x1eCKV1 "
RUNNER_NAME = "__grader_run__"
MAX_MESSAGE = 2000
#: The compiler flags of ``from __future__`` imports (annotations and the older ones).
FUTURE_FLAGS = 0x1000000 | 0x800000 | 0x400000 | 0x200000 | 0x100000 | 0x80000 | 0x40000 | 0x20000
MAX_FLAGS = 60
#: Top-level modules whose state tests depend on (what the locked cells import is imported
#: before the snapshot; the modules tests compute with are snapshotted: not ``sys``, ``os``,
#: IPython or matplotlib, whose own state changes while an honest notebook runs).
SNAPSHOT_TOPS = ("numpy", "math", "cmath", "builtins", "operator", "functools", "itertools",
                 "collections", "copy", "types", "random", "statistics", "json", "tinytorch",
                 "warnings")
#: What ``warnings.catch_warnings`` swaps while a test's ``with`` block runs (and puts back
#: when it ends): not checked between a test's statements, put back when a cell ends.
IN_TEST_VOLATILE = frozenset({("warnings", "filters"), ("warnings", "showwarning"),
                              ("warnings", "_showwarnmsg_impl")})
#: Names that change while an honest kernel runs: ipykernel swaps ``input`` during each
#: execution, IPython keeps its outputs in ``_``.
VOLATILE = frozenset({("builtins", "input"), ("builtins", "raw_input"), ("builtins", "_"),
                      ("builtins", "__IPYTHON__"), ("builtins", "display"),
                      ("builtins", "get_ipython")})
#: Names Python itself adds to a module's or a class's dictionary when they are first needed.
LAZY_NAMES = frozenset({"__warningregistry__", "__annotations__"})
SYS_HOOKS = ("displayhook", "excepthook", "breakpointhook", "unraisablehook")
#: What of IPython's machinery :func:`_restore_shell` puts back, and says so.
SHELL_LISTS = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")
SHELL_ATTRS = ("displayhook", "display_pub", "custom_exceptions", "CustomTB", "user_ns",
               "compile", "showtraceback", "run_cell", "run_cell_async", "run_code",
               "run_ast_nodes", "transform_cell", "ex", "ev")
SHELL_EVENTS = ("pre_execute", "pre_run_cell", "post_execute", "post_run_cell",
                "shell_initialized")
#: The notes it may make (the seal shows no other text of the runner's).
SHELL_NOTES = frozenset({f"IPython's {n}" for n in (*SHELL_LISTS, *SHELL_ATTRS)}
                        | {f"IPython's {n} callbacks" for n in SHELL_EVENTS}
                        | {f"sys.{n}" for n in SYS_HOOKS}
                        | {"IPython's shell methods", "IPython's machinery"})
#: Libraries whose IPython event callbacks appear while an honest notebook runs (the inline
#: backend registers itself when the first figure is made).
LIBRARY_CALLBACKS = ("matplotlib_inline", "matplotlib", "ipykernel", "IPython", "ipywidgets")
REFUSED = frozenset({"sys.addaudithook", "sys.settrace", "sys.setprofile", "sys._current_frames",
                     "gc.get_objects", "gc.get_referrers", "gc.get_referents",
                     "sys._current_exceptions", "cpython.PyInterpreterState_Clear",
                     "cpython._PySys_ClearAuditHooks"})
FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})

_pending: dict[str, Any] | None = None


def ipython_name(name: str) -> bool:
    """Whether ``name`` is one IPython binds itself as cells run (``_``, ``__``, ``_5``,
    ``_i``, ``_i5``, ``_oh``, ...) or a dunder: a given cell's own other names are put back
    before every locked cell, these are not. Plain string operations only (the seal calls it
    while the notebook's code may have replaced library functions)."""
    if name[:1] != "_":
        return False
    rest = name[1:]
    return (rest in ("", "_", "__", "i", "ii", "iii", "oh", "ih", "dh", "exit_code")
            or rest.isdigit() or (rest[:1] == "i" and rest[1:].isdigit())
            or (name[:2] == "__" and name[-2:] == "__"))


def prepare(payload: dict[str, Any], fd: int) -> None:
    """Keep the seal's payload for :func:`install` (called before any notebook code runs)."""
    global _pending
    _pending = {"payload": payload, "fd": fd}


def install(shell: Any) -> bool:
    """Add the seal and the guard, and the runner ``__grader_run__`` to the builtins.

    Called once, after the IPython shell exists and before the first cell. Nothing of the
    payload stays reachable from this module afterwards. False if there was nothing to
    install (a kernel started without a seal).
    """
    global _pending
    pending, _pending = _pending, None
    if pending is None:
        return False
    _install(shell, pending["payload"], pending["fd"])
    pending.clear()
    return True


def _runner(gid: str, nonce: str) -> None:
    """What ``__grader_run__`` is: run the locked cell ``gid`` under the seal.

    The seal answers the ``coursekit.run`` event only from this function's frame; it puts
    ``(code, namespace, exec)`` into ``box`` and objects it replaced into ``grave`` (released
    here, outside the seal, as their ``__del__`` may run notebook code).
    """
    import sys

    box: list[Any] = []
    grave: list[Any] = []
    notes = _restore_shell()
    sys.audit("coursekit.run", gid, nonce, box, grave, notes)
    if not box:
        grave.clear()
        return None
    t = box.pop()
    status, ename, message = "failed", "", ""
    try:
        t[2](t[0], t[1])
        status = "passed"
        _follow_future(t[0].co_flags)
    except BaseException as exc:  # noqa: BLE001 - every way out of a test is its outcome
        ename, message = _describe(exc)
        del exc
    finally:
        sys.audit("coursekit.done", gid, nonce, status, ename, message, grave)
        # what the notebook's objects run as they go (``__del__``, weakref callbacks) runs
        # here, once this frame holds nothing of the cell's: not its code, not the names the
        # test bound
        t = None
        grave.clear()
    return None


def _follow_future(flags: int) -> None:
    """A ``from __future__`` import in a locked cell holds for the cells after it, as IPython
    does for the cells it compiles: passed on to IPython's compiler."""
    shell = _shell_baseline.get("shell")
    future = flags & FUTURE_FLAGS
    if shell is not None and future:
        try:
            shell.compile.flags |= future
        except Exception:  # noqa: BLE001 - the next student cell then compiles without it
            pass


def _describe(exc: BaseException) -> tuple[str, str]:
    """The error's name and message as plain strings (the notebook's code may run here:
    its exception classes and their messages are its own)."""
    try:
        name = type(exc).__name__
        name = name if type(name) is str else "Exception"
    except BaseException:  # noqa: BLE001
        name = "Exception"
    try:
        text = str(exc)
        text = str.__str__(text) if isinstance(text, str) else ""
    except BaseException:  # noqa: BLE001
        text = "(the error's message could not be shown)"
    if name == "KeyboardInterrupt" and not text:
        text = "the cell was stopped (time limit)"
    return name[:200], text[:MAX_MESSAGE]


_shell_baseline: dict[str, Any] = {}


def _capture_shell(shell: Any) -> None:
    """What of IPython's machinery :func:`_restore_shell` puts back before each locked cell."""
    import sys

    _shell_baseline.clear()
    _shell_baseline.update(
        shell=shell,
        lists={name: list(getattr(shell, name, []) or []) for name in SHELL_LISTS},
        events={name: list(callbacks) for name, callbacks in shell.events.callbacks.items()},
        attrs={name: shell.__dict__.get(name) for name in SHELL_ATTRS},
        instance_keys=set(shell.__dict__),
        sys_hooks={name: getattr(sys, name, None) for name in SYS_HOOKS},
        trace=sys.gettrace(),
        profile=sys.getprofile(),
    )


def _restore_shell() -> list[str]:
    """Put back IPython's transformers, event callbacks, display hook, exception handler and
    ``sys`` hooks as they were when the kernel started; what was changed, for the flags.

    This keeps later locked cells running as the grader sent them; verdicts do not depend on
    it (the seal checks what ran).
    """
    import sys

    base = _shell_baseline
    shell = base.get("shell")
    if shell is None:
        return []
    changed: list[str] = []
    try:
        for name, items in base["lists"].items():
            current = getattr(shell, name, None)
            if not isinstance(current, list) or [id(x) for x in current] != [id(x) for x in items]:
                changed.append(f"IPython's {name}")
                setattr(shell, name, list(items))
        callbacks = shell.events.callbacks
        for name, items in base["events"].items():
            now = callbacks.get(name)
            if not isinstance(now, list):
                changed.append(f"IPython's {name} callbacks")
                callbacks[name] = list(items)
                continue
            theirs = [cb for cb in now if not any(cb is x for x in items)
                      and not str(getattr(cb, "__module__", "") or "").startswith(
                          LIBRARY_CALLBACKS)]
            if theirs or any(not any(c is x for c in now) for x in items):
                changed.append(f"IPython's {name} callbacks")
                callbacks[name] = [cb for cb in now if not any(cb is x for x in theirs)]
                callbacks[name] += [x for x in items if not any(c is x for c in now)]
        for name, value in base["attrs"].items():
            if shell.__dict__.get(name) is not value:
                changed.append(f"IPython's {name}")
                if value is None:
                    shell.__dict__.pop(name, None)
                else:
                    shell.__dict__[name] = value
        for name in set(shell.__dict__) - base["instance_keys"]:
            if callable(shell.__dict__[name]):
                changed.append("IPython's shell methods")
                del shell.__dict__[name]
        for name, value in base["sys_hooks"].items():
            if getattr(sys, name, None) != value:  # a bound method is made anew each time
                changed.append(f"sys.{name}")
                setattr(sys, name, value)
    except Exception:  # noqa: BLE001 - best effort; the seal checks what matters
        changed.append("IPython's machinery")
    return changed


def _install(shell: Any, payload: dict[str, Any], fd: int) -> None:
    """Build the seal and the guard as closures over private state, and add them.

    Everything the two hooks use is bound here, as a local of this function: they look up
    nothing in a module or the builtins when they run, where the notebook's code could have
    put something of its own.
    """
    import builtins
    import importlib
    import sys
    from types import MappingProxyType

    key = bytes.fromhex(payload["key"])
    cells = MappingProxyType({str(g): (str(c["source"]), str(c["kind"]))
                              for g, c in payload["cells"].items()})
    keeps = MappingProxyType({str(g): frozenset(str(n) for n in c.get("keep", ()))
                              for g, c in payload["cells"].items()})
    solution_names = frozenset(payload.get("solution_names", ()))
    for name in payload.get("preload", ()):
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - the cell that imports it fails the same way
            pass
    tops = set(SNAPSHOT_TOPS)
    user_ns = shell.user_ns
    builtins.__dict__[RUNNER_NAME] = _runner
    # What is taken now is compared with the state while a cell runs: IPython puts its own
    # display and exception hooks in place, hides exit/quit and adds get_ipython for each
    # cell, and ipykernel lets Ctrl-C (the grader's interrupt) raise KeyboardInterrupt.
    saved_excepthook = sys.excepthook
    with shell.builtin_trap, shell.display_trap:
        sys.excepthook = shell.excepthook
        try:
            _capture_shell(shell)
            _seal_with(shell, key, cells, keeps, solution_names, tops, user_ns, fd)
        finally:
            sys.excepthook = saved_excepthook


def _seal_with(shell: Any, key: bytes, cells: Mapping[str, tuple[str, str]],  # noqa: C901
               keeps: Mapping[str, frozenset[str]], solution_names: frozenset[str],
               tops: set[str], user_ns: dict[str, Any], fd: int) -> None:
    """The rest of :func:`_install`, run with IPython's per-cell state in place."""
    import _hashlib
    import _thread
    import builtins
    import gc
    import opcode
    import operator
    import os
    import signal
    import sys
    import types

    # -- what the hooks work with: bound now, never looked up again ----------------------
    getframe, get_ident, getpid = sys._getframe, _thread.get_ident, os.getpid
    hmac_digest, write = _hashlib.hmac_digest, os.write
    compile_, exec_, is_, map_, all_, len_, type_, id_ = (
        compile, exec, operator.is_, map, all, len, type, id)
    str_, list_, dict_, set_, frozenset_ = str, list, dict, set, frozenset
    module_t, function_t, code_t = types.ModuleType, types.FunctionType, types.CodeType
    method_t = types.MethodType
    is_ipython_name = ipython_name
    type_setattr, type_delattr = type.__setattr__, type.__delattr__
    gc_isenabled, gc_disable, gc_enable = gc.isenabled, gc.disable, gc.enable
    getsignal, setsignal, getitimer, setitimer = (
        signal.getsignal, signal.signal, signal.getitimer, signal.setitimer)
    itimers = (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)
    builtins_module, builtins_dict = builtins, builtins.__dict__
    sys_dict, modules = sys.__dict__, sys.modules
    main_thread, pid = get_ident(), getpid()
    runner, runner_code = _runner, _runner.__code__
    prefix, volatile, lazy_names = PREFIX, VOLATILE, LAZY_NAMES
    in_test_volatile = IN_TEST_VOLATILE
    max_flags, max_message, sys_hook_names = MAX_FLAGS, MAX_MESSAGE, SYS_HOOKS
    refused, frame_attributes, future_flags = REFUSED, FRAME_ATTRIBUTES, FUTURE_FLAGS
    future = [0]  # from __future__ imports of the locked cells run so far
    code_args = ("__code__", "__defaults__", "__kwdefaults__")
    missing = object()

    def same(a: Any, b: Any) -> bool:
        """``a is b``, or the same method bound to the same object (IPython binds its hooks
        anew for each cell)."""
        return a is b or (type_(a) is method_t and type_(b) is method_t
                          and a.__func__ is b.__func__ and a.__self__ is b.__self__)

    def code_objects(code: Any) -> list[Any]:
        found, todo = [], [code]
        while todo:
            c = todo.pop()
            found.append(c)
            todo.extend(k for k in c.co_consts if type_(k) is code_t)
        return found

    # -- the snapshot of library state ---------------------------------------------------
    watched: list[tuple[str, Any, dict, tuple]] = []  # (name, module dict, copy, values)
    watched_modules: list[tuple[str, Any]] = []  # (name in sys.modules, module)
    classes: list[tuple[str, Any, dict, tuple]] = []  # (qualname, class, dict copy, values)
    seen_classes: set[int] = set()
    for name, mod in sorted(modules.items()):
        if type(mod) is not module_t or name.partition(".")[0] not in tops:
            continue
        d = mod.__dict__
        watched.append((name, d, dict(d), tuple(d.values())))
        watched_modules.append((name, mod))
        for value in list(d.values()):
            if (isinstance(value, type) and id(value) not in seen_classes
                    and getattr(value, "__module__", None) == name
                    and not value.__flags__ & (1 << 8)):  # not an immutable type
                seen_classes.add(id(value))
                copy = dict(value.__dict__)
                classes.append((f"{name}.{value.__qualname__}", value, copy,
                                tuple(copy.values())))
    sys_hooks = {n: sys_dict.get(n) for n in sys_hook_names}
    filters = getattr(modules.get("warnings"), "filters", None)
    filters_saved = tuple(filters) if type(filters) is list_ else ()
    if type(filters) is not list_:
        filters = None
    extobj = getattr(modules.get("numpy._core._multiarray_umath"), "_extobj_contextvar", None)
    extobj_saved = extobj.get() if extobj is not None else None
    signals = {}
    for signum in signal.valid_signals():
        try:
            signals[signum] = getsignal(signum)
        except (OSError, ValueError):
            continue
    signals[signal.SIGINT] = signal.default_int_handler
    protected = frozenset(id(v) for _, d, _, _ in watched for v in d.values()
                          if type(v) is function_t)
    # modules that ask for a frame only to read a module's name or a flag of it, and hand
    # no frame back to their caller
    allowed_frame_files = frozenset(
        getattr(modules.get(name), "__file__", None) for name in (
            "collections", "typing", "typing_extensions", "enum")) - {None}
    # logging asks for the frame of whoever logs (Logger.findCaller): only for that; the
    # traceback module's stack summaries and texts carry no frame either
    logging_file = getattr(modules.get("logging"), "__file__", None)
    traceback_file = getattr(modules.get("traceback"), "__file__", None)
    traceback_safe = frozenset({"extract_stack", "format_stack", "print_stack"})
    library_dirs = tuple({os.path.dirname(os.__file__) + os.sep,
                          os.path.dirname(os.path.dirname(modules["IPython"].__file__)) + os.sep}
                         if "IPython" in modules else {os.path.dirname(os.__file__) + os.sep})
    # the course's own code: this package (the kernel's side of the grader) and the reference
    # package the notebook imports its earlier modules from
    course_dirs = tuple({os.path.dirname(runner_code.co_filename) + os.sep} | {
        os.path.dirname(os.path.dirname(str(getattr(modules.get(n), "__file__", "") or "")))
        + os.sep for n in ("tinytorch",) if getattr(modules.get(n), "__file__", None)})
    trusted_prefixes = (*library_dirs, *course_dirs, "<locked cell ", "<frozen ")
    # libraries that compile code they made from the names they were given (a named tuple's
    # or a dataclass's methods) or only parse it (ast.literal_eval)
    text_compilers = frozenset(
        getattr(modules.get(name), "__file__", None) for name in (
            "collections", "dataclasses", "typing", "enum", "ast")) - {None}
    # IPython, and what it shows tracebacks with, compile cells and sources only to show them
    text_compiler_dirs = tuple(
        os.path.dirname(str(modules[name].__file__)) + os.sep
        for name in ("IPython", "executing", "stack_data")
        if getattr(modules.get(name), "__file__", None)) or ("\x00",)
    own_prefixes = (*library_dirs, *course_dirs)
    store_ops = frozenset(opcode.opmap[n] for n in (
        "STORE_NAME", "DELETE_NAME", "STORE_GLOBAL", "DELETE_GLOBAL") if n in opcode.opmap)
    import_star, extended_arg = opcode.opmap.get("IMPORT_STAR", -1), opcode.EXTENDED_ARG

    shell_names = dict_(user_ns)  # what IPython put there itself (its own `open`, say)
    ran: set[str] = set_()  # the locked cells run so far
    shell_notes = frozenset_(SHELL_NOTES)
    busy: set[int] = set()
    flags: list[str] = []
    flag_keys: set[str] = set()
    state: dict[str, Any] = {"frame": None}
    bindings: dict[str, Any] = {}
    seq = [0]

    def flag(text: str) -> None:
        if text not in flag_keys and len_(flags) < max_flags:
            flag_keys.add(text)
            flags.append(text[:300])
            # out at once, signed, before the code that raised it can do anything more (read
            # the key from raw memory, say): a later line can add to the flags, not take any
            emit(("", "", "flag", "", "", ""))

    def emit(fields: tuple) -> None:
        seq[0] += 1
        body = ":".join([f.encode("utf-8", "backslashreplace").hex()
                         for f in (str_(seq[0]), *fields, "\x1f".join(flags))])
        mac = hmac_digest(key, body.encode("ascii"), "sha256").hex()
        line = prefix + mac.encode("ascii") + b" " + body.encode("ascii") + b"\n"
        while line:
            try:
                line = line[write(fd, line):]
            except InterruptedError:
                continue
            except OSError:
                return

    def name_of(value: Any) -> str:
        """A name the notebook chose, as a flag may show it: a short plain name, else how
        long it is (a flag must not carry text the notebook put there, hidden tests read
        from somewhere included)."""
        if type_(value) is str_ and len_(value) <= 40 and value.isidentifier():
            return value
        size = len_(value) if type_(value) is str_ else 0
        return f"<a name of {size} characters>" if size else "<not a name>"

    def where() -> str:
        gid = state.get("gid")
        return f" while {gid} ran" if gid is not None else ""

    def trusted(frame: Any) -> bool:
        """Whether a frame runs the libraries', the course's or a locked cell's code (a cell
        of the notebook, a file it wrote, code it made from text: no)."""
        filename = frame.f_code.co_filename
        return type_(filename) is str_ and filename.startswith(trusted_prefixes)

    def notebook_on_stack(frame: Any) -> bool:
        """Whether the notebook's code is on the stack from ``frame`` down (the caller's
        caller's ...): a library asked for a frame on its behalf."""
        depth = 0
        while frame is not None and depth < 500:
            if not trusted(frame):
                return True
            frame = frame.f_back
            depth += 1
        return False

    def assigned_names(codes: list) -> Any:
        """The global names a test's code binds or deletes itself; None if it cannot be
        told (``from x import *``)."""
        names: set[str] = set_()
        for c in codes:
            raw, co_names, ext, i = c.co_code, c.co_names, 0, 0
            while i + 1 < len_(raw):
                op, arg = raw[i], raw[i + 1] | ext
                ext = arg << 8 if op == extended_arg else 0
                if op == import_star:
                    return None
                if op in store_ops and arg < len_(co_names) and type_(co_names[arg]) is str_:
                    names.add(co_names[arg])
                i += 2
        return names

    def check_test_ns(grave: list) -> list[str]:
        """The names a running test reads from its namespace and does not bind itself stay
        what they were when it started: the notebook's code reaches that namespace only
        through the test's frame or the test's own functions."""
        watch, t = state.get("test_watch"), state.get("t")
        if watch is None or t is None:
            return []
        ns = t[1]
        if not plain_keys(ns):
            return ["the test's namespace holds a key that is not a name"]
        changed = []
        for name, value in watch.items():
            now = ns.get(name, missing)
            if now is not value:
                changed.append(f"the test's name {name_of(name)} changed")
                grave.append(now)
                if value is missing:
                    del ns[name]
                else:
                    ns[name] = value
        return changed

    # -- checking and putting back --------------------------------------------------------
    def plain_keys(d: Any) -> bool:
        """Whether every key of the dictionary ``d`` is an exact string (looked at without
        hashing or comparing any: a key of the notebook's could run its own code then)."""
        for k in d:
            if type_(k) is not str_:
                return False
        return True

    def check_modules(grave: list, fix: bool, in_test: bool = False) -> list[str]:  # noqa: C901
        changed: list[str] = []
        modules_plain = plain_keys(modules)
        if not modules_plain:
            changed.append("sys.modules holds a key that is not a name")
        else:
            for name, mod in watched_modules:  # a module of its own under a library's name
                if modules.get(name, missing) is not mod:
                    changed.append(f"sys.modules[{name!r}] replaced")
                    if fix:
                        grave.append(modules.get(name))
                        modules[name] = mod
        for i, (name, d, copy, values) in enumerate(watched):
            if len_(d) == len_(values) and all_(map_(is_, d.values(), values)):
                continue
            if not plain_keys(d):
                # changed, and not to be put back: a lookup could run the notebook's code
                changed.append(f"{name} holds a key that is not a name")
                continue
            skipped = False
            for k, v in list_(d.items()):
                old = copy.get(k, missing)
                if old is missing:
                    if (modules_plain and type_(v) is module_t
                            and modules.get(name + "." + k) is v):
                        copy[k] = v  # a submodule imported since: numpy.linalg, say
                        continue
                    if (name, k) in volatile or k in lazy_names:
                        continue
                    changed.append(f"{name}.{name_of(k)} added")
                    if fix:
                        grave.append(v)
                        del d[k]
                elif old is not v and (name, k) not in volatile:
                    if in_test and (name, k) in in_test_volatile:
                        skipped = True  # looked at again when the cell ends
                        continue
                    changed.append(f"{name}.{name_of(k)} replaced")
                    if fix:
                        grave.append(v)
                        d[k] = old
            for k, old in list_(copy.items()):
                if k not in d and (name, k) not in volatile:
                    changed.append(f"{name}.{name_of(k)} removed")
                    if fix:
                        d[k] = old
            watched[i] = (name, d, copy, values if skipped else tuple(d.values()))
        for i, (qual, cls, copy, values) in enumerate(classes):
            now = cls.__dict__
            if len_(now) == len_(values) and all_(map_(is_, now.values(), values)):
                continue
            if not plain_keys(now):
                changed.append(f"{qual} holds a key that is not a name")
                continue
            for k, v in list_(now.items()):
                old = copy.get(k, missing)
                if old is missing:
                    if k in lazy_names:
                        continue
                    changed.append(f"{qual}.{name_of(k)} added")
                    if fix:
                        grave.append(v)
                        type_delattr(cls, k)
                elif old is not v:
                    changed.append(f"{qual}.{name_of(k)} replaced")
                    if fix:
                        grave.append(v)
                        type_setattr(cls, k, old)
            for k, old in list_(copy.items()):
                if k not in now:
                    changed.append(f"{qual}.{name_of(k)} removed")
                    if fix:
                        type_setattr(cls, k, old)
            classes[i] = (qual, cls, copy, tuple(cls.__dict__.values()))
        if not plain_keys(sys_dict):
            changed.append("sys holds a key that is not a name")
        else:
            for name, value in sys_hooks.items():
                if not same(sys_dict.get(name), value):
                    changed.append(f"sys.{name} replaced")
                    if fix:
                        grave.append(sys_dict.get(name))
                        sys_dict[name] = value
        if not plain_keys(user_ns):
            changed.append("the notebook's namespace holds a key that is not a name")
            return changed
        for name, value in bindings.items():
            if user_ns.get(name, missing) is not value:
                changed.append(f"the notebook's name {name} (bound by given code) changed")
                if fix:
                    grave.append(user_ns.get(name))
                    user_ns[name] = value
        if user_ns.get("__builtins__") is not builtins_module:
            changed.append("the notebook's __builtins__ replaced")
            if fix:
                grave.append(user_ns.get("__builtins__"))
                user_ns["__builtins__"] = builtins_module
        # the standard library's warnings and NumPy's floating-point error handling, as the
        # kernel started (tests check that code does not warn)
        if filters is not None and (len_(filters) != len_(filters_saved) or not all_(
                map_(is_, filters, filters_saved))):
            if fix:
                grave.append(list_(filters))
                filters[:] = filters_saved
        if extobj is not None and extobj.get() is not extobj_saved and fix:
            grave.append(extobj.get())  # it may hold the notebook's error callback
            extobj.set(extobj_saved)
        return changed

    def check_signals(grave: list, fix: bool) -> list[str]:
        changed = []
        for signum, handler in signals.items():
            try:
                now = getsignal(signum)
                if now is not handler:
                    changed.append(f"the handler of signal {signum}")
                    if fix:
                        grave.append(now)
                        setsignal(signum, handler)
            except (OSError, ValueError, TypeError):
                continue
        for which in itimers:
            try:
                if getitimer(which) != (0.0, 0.0):
                    changed.append("an interval timer")
                    if fix:
                        setitimer(which, 0)
            except (OSError, ValueError):
                continue
        return changed

    def unshadow(code: Any, grave: list) -> None:
        """Names a test uses from the builtins, shadowed by the notebook: removed."""
        used: set[str] = set_()
        for c in code_objects(code):
            used.update([n for n in c.co_names if type_(n) is str_])
        for name in used:
            if (name in builtins_dict and name not in solution_names and name[:2] != "__"
                    and name not in bindings and name in user_ns
                    and user_ns[name] is not shell_names.get(name, missing)):
                flag(f"the notebook's name {name} hid the builtin {name}: removed before "
                     f"{state.get('gid')} (not a sign of tampering)")
                grave.append(user_ns[name])
                del user_ns[name]

    # -- what each event does -------------------------------------------------------------
    def on_run(args: tuple) -> None:
        if len_(args) != 5:
            return
        gid, nonce, box, grave, notes = args
        if (type_(gid) is not str_ or type_(nonce) is not str_ or type_(box) is not list_
                or type_(grave) is not list_ or state["frame"] is not None
                or getpid() != pid or get_ident() != main_thread):
            return
        frame = getframe(2)
        if frame.f_code is not runner_code or gid not in cells:
            return
        if gid in ran:  # each locked cell runs once, when the grader sends it
            flag(f"the notebook's code ran the grader's runner itself ({gid}, refused)")
            return
        ran.add(gid)
        if not plain_keys(user_ns):
            flag("the notebook's namespace holds a key that is not a name: "
                 f"{gid} was not run")
            return
        if type_(notes) is list_:
            for note in notes[:10]:
                shown = note if type_(note) is str_ and note in shell_notes else (
                    "IPython's machinery")
                flag(f"{shown} was changed: put back before {gid}")
        source, kind = cells[gid]
        state["gid"] = gid
        for change in check_modules(grave, fix=True) + check_signals(grave, fix=True):
            flag(f"{change}: put back before {gid}")
        code = compile_(source, f"<locked cell {gid}>", "exec", flags=future[0],
                        dont_inherit=True, optimize=0)
        future[0] |= code.co_flags & future_flags
        if kind == "test":
            unshadow(code, grave)
        # a test runs in a namespace of its own (a copy of the notebook's): what it binds
        # (its inputs, its expected values) is gone when it ends, out of the reach of the
        # notebook's later cells and of the code it calls
        t = (code, dict_(user_ns) if kind == "test" else user_ns, exec_)
        nested = code_objects(code)
        watch = None
        if kind == "test":
            assigned = assigned_names(nested)
            if assigned is not None:
                read: set[str] = set_(["__builtins__", *bindings])
                for c in nested:
                    read.update([n for n in c.co_names if type_(n) is str_])
                watch = {n: t[1].get(n, missing) for n in read if n not in assigned}
        state.update(frame=frame, nonce=nonce, kind=kind, t=t, executed=False, tampered=[],
                     codes=frozenset_([id_(c) for c in nested]), keep=nested, grave=[],
                     before=dict_(user_ns) if kind == "given" else None, test_watch=watch)
        box.append(t)

    def on_exec(args: tuple) -> None:
        t = state.get("t")
        if state["frame"] is None or t is None or len_(args) < 1 or args[0] is not t[0]:
            return
        frame = getframe(2)
        if frame is state["frame"] and frame.f_locals.get("t") is t:
            state["executed"] = True

    def on_checkpoint(args: tuple) -> None:
        if state["frame"] is None or state.get("kind") != "test":
            return
        func = args[0]
        if type_(func) is not function_t:
            return
        codes = state["codes"]
        if id_(func.__code__) not in codes or id_(getframe(2).f_code) not in codes:
            return
        changed = check_modules(state["grave"], fix=True, in_test=True)
        changed += check_signals(state["grave"], fix=True)
        changed += check_test_ns(state["grave"])
        if changed:
            state["tampered"].extend(changed)

    def on_done(args: tuple) -> None:
        if len_(args) != 6 or state["frame"] is None:
            return
        gid, nonce, status, ename, message, grave = args
        frame = getframe(2)
        if (frame is not state["frame"] or frame.f_code is not runner_code
                or type_(grave) is not list_ or type_(gid) is not str_
                or type_(nonce) is not str_ or gid != state["gid"]
                or nonce != state["nonce"]):
            return
        kind = state["kind"]
        grave.extend(state["grave"])
        changed = state["tampered"] + check_test_ns(grave) + check_modules(grave, fix=True)
        changed += check_signals(grave, fix=True)
        status = status if type_(status) is str_ else "failed"
        ename = ename[:200] if type_(ename) is str_ else ""
        message = message[:max_message] if type_(message) is str_ else ""
        if status == "passed" and not state["executed"]:
            status, ename = "failed", "NotRunByGrader"
            message = "the grader could not see this cell's code run"
        if changed:
            for change in changed[:5]:
                flag(f"{change} while {gid} ran")
            if kind == "test":
                status, ename = "failed", "ChangedWhileTesting"
                message = ("the notebook's code changed what this test depends on while it "
                           f"ran ({changed[0]}); the test does not count")
        if kind == "test":
            # what the visible part of a test binds, and what it imports, stays for the cells
            # after it (students see it bound); what only its hidden part binds (its inputs,
            # its expected values) does not
            keep = keeps.get(gid, frozenset_())
            for k, v in list_(state["t"][1].items()):
                if type_(k) is str_ and (k in keep or type_(v) is module_t) and (
                        user_ns.get(k, missing) is not v):
                    grave.append(user_ns.get(k))
                    user_ns[k] = v
        if kind == "given":
            before = state["before"] or {}
            for k, v in list_(user_ns.items()):
                if (type_(k) is str_ and before.get(k, missing) is not v
                        and k not in solution_names and not is_ipython_name(k)):
                    bindings[k] = v
        # Nothing of the notebook's may be let go of in here: an object whose last reference
        # the seal drops runs its ``__del__`` inside the seal, with the seal's frames on the
        # stack. The runner lets go of them (see ``_runner``).
        grave.append(state.get("before"))
        grave.append(state.get("test_watch"))
        state.clear()
        state["frame"] = None
        emit((gid, nonce, kind, status, ename, message))

    def frame_for_notebook(caller: Any) -> bool:
        """Whether a frame asked for by the code running in ``caller`` (reading a traceback's
        or a generator's frame, ``sys._getframe``) could reach the notebook's code: asked
        for by that code itself, or by a library that hands frames back to it."""
        code = caller.f_code
        filename, name = code.co_filename, code.co_name
        if type_(filename) is not str_ or type_(name) is not str_:
            return True
        if filename in allowed_frame_files:
            return False
        if filename == traceback_file:
            # the traceback module turns frames into summaries and texts; only walk_tb and
            # walk_stack hand frames to whoever iterates them
            frame, handed = caller, False
            while frame is not None and frame.f_code.co_filename == traceback_file:
                handed = frame.f_code.co_name in ("walk_tb", "walk_stack")
                frame = frame.f_back
            if not handed or name in traceback_safe:
                return False
            return frame is not None and not trusted(frame)
        outer = caller.f_back
        if (filename == logging_file and name == "<lambda>" and outer is not None
                and type_(outer.f_code.co_name) is str_ and outer.f_code.co_name == "findCaller"
                and outer.f_code.co_filename == logging_file):
            return False
        if filename.startswith(own_prefixes):
            # a library's or the course's code: on whose behalf? (IPython reads frames to
            # show an error, after the notebook's code has left the stack)
            return notebook_on_stack(outer)
        return not trusted(caller)

    def on_frame(what: str) -> None:
        caller = getframe(2)
        if frame_for_notebook(caller):
            flag(f"frame introspection ({what}) by the notebook's code in "
                 f"{name_of(caller.f_code.co_name)}{where()}")

    def outside(filename: Any) -> bool:
        """Whether ``filename`` names a file that is neither a library's nor the course's."""
        return type_(filename) is str_ and filename[:1] != "<" and not filename.startswith(
            own_prefixes)

    def on_code(event: str, args: tuple) -> None:
        """Code that the scan of the notebook's cells cannot have read: made from text at
        run time, loaded from bytes, or imported from a file the notebook wrote."""
        caller = getframe(2)
        filename = caller.f_code.co_filename
        if type_(filename) is not str_:
            flag(f"{event} by code with a made-up name{where()}")
            return
        if event == "import":
            if len_(args) >= 2 and outside(args[1]):
                flag(f"imports a compiled module it wrote ({name_of(args[0])}){where()}")
            return
        if event == "compile":
            if filename.startswith(text_compiler_dirs) or filename in text_compilers:
                return  # IPython compiles the notebook's cells and magics
            if filename.startswith("<frozen "):  # importlib: a module's source
                if len_(args) >= 2 and outside(args[1]):
                    flag(f"imports a module it wrote{where()}")
            elif not trusted(caller) or notebook_on_stack(caller.f_back):
                flag(f"compiles code made from text at run time{where()}")
            return
        if event == "marshal.loads":
            if filename.startswith("<frozen "):  # importlib loads a module's .pyc
                if not outside(caller.f_locals.get("bytecode_path")):
                    return
            elif trusted(caller) and not notebook_on_stack(caller.f_back):
                return
            flag(f"loads compiled code from bytes{where()}")
            return
        if not trusted(caller):  # code.__new__: a code object made or changed
            flag(f"makes or changes a code object{where()}")

    code_events = frozenset_({"compile", "marshal.loads", "code.__new__", "import"})
    wanted = frozenset_({"exec", "object.__getattr__", "object.__setattr__", "coursekit.run",
                         "coursekit.done", "sys._getframe"}) | refused | code_events

    def seal(event: str, args: tuple) -> None:
        # Nothing here may compare, hash or format an object of the notebook's: a subclass
        # of str would run its own __eq__ or __hash__ inside the seal. Real events are made
        # of exact strings.
        if type_(event) is not str_ or (event not in wanted and event[:7] != "ctypes."):
            return
        tid = get_ident()
        if tid in busy:
            # the seal reads no traceback's or generator's frame itself: the notebook's code
            # runs inside the seal (the guard refuses it)
            if (event == "object.__getattr__" and len_(args) >= 2 and type_(args[1]) is str_
                    and args[1] in frame_attributes):
                flag("the notebook's code ran inside the grader's seal")
            return
        busy.add(tid)
        gc_was = gc_isenabled()
        gc_disable()
        try:
            if event == "exec":
                on_exec(args)
            elif event == "object.__getattr__":
                if len_(args) < 2 or type_(args[1]) is not str_:
                    return
                if args[1] == "__code__":
                    on_checkpoint(args)
                elif args[1] in frame_attributes:
                    on_frame(args[1])
            elif event == "coursekit.run":
                on_run(args)
            elif event == "coursekit.done":
                on_done(args)
            elif event == "sys._getframe":
                on_frame(event)
            elif event in code_events:
                on_code(event, args)
            elif event == "object.__setattr__":
                if len_(args) >= 2 and type_(args[1]) is str_ and (args[1] == "__code__" or (
                        args[1] in code_args and id_(args[0]) in protected)):
                    flag(f"replaced a function's {args[1]}{where()} (refused)")
            elif not state.get("installing"):
                flag(f"{event} refused{where()}")
        except BaseException as exc:  # noqa: BLE001 - nothing may leave the seal
            flag(f"the grader's seal failed on {event}: {type_(exc).__name__}")
        finally:
            if gc_was:
                gc_enable()
            busy.discard(tid)

    def guard(event: str, args: tuple) -> None:
        """Refuse what would let the notebook's code reach the seal or rewrite the
        interpreter (it keeps nothing a traceback could show but these constants)."""
        if type_(event) is not str_:
            return  # not an event of the interpreter's (see the seal)
        if event in refused or event[:7] == "ctypes.":
            raise PermissionError(f"{event} is not allowed while grading")
        if event == "sys._getframe" or (event == "object.__getattr__" and len_(args) >= 2
                                        and type_(args[1]) is str_
                                        and args[1] in frame_attributes):
            tid = get_ident()
            if tid in busy:
                if event != "sys._getframe":  # the seal asks for frames, never reads these
                    raise PermissionError("reading frames is not allowed here")
                return
            if state["frame"] is not None:  # a locked cell runs: no frame for the notebook
                busy.add(tid)
                try:
                    refuse = frame_for_notebook(getframe(1))
                finally:
                    busy.discard(tid)
                if refuse:
                    raise PermissionError("reading frames is not allowed while a test runs")
            return
        if len_(args) < 2 or type_(args[1]) is not str_:
            return
        if event == "object.__setattr__":
            if args[1] == "__code__" or (args[1] in code_args and id_(args[0]) in protected):
                raise PermissionError(f"replacing a function's {args[1]} is not allowed "
                                      "while grading")
        elif event == "object.__getattr__" and args[0] is runner and args[1] in code_args:
            raise PermissionError("the grader's runner is not open to inspection")

    state["installing"] = True
    sys.addaudithook(seal)
    sys.addaudithook(guard)
    del state["installing"]
