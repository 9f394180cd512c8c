"""Code that runs *inside the student's kernel*, installed by the driver before any notebook cell.

It is executed from source in a private namespace (never imported as a module there) and does
three things:

1. It records what the instructor's own cells built (helper functions, imported modules, the
   parameters) and the pristine state of builtins and of every loaded module, *before* student
   code can touch them.
2. Each graded test cell reaches the kernel as `_course_grader_run(test_id, nonce)`. The harness
   then puts back everything students commonly patch to force a pass — builtins, helper names
   and their code objects, module functions (`math.isclose`, `torch.allclose` ...), instructor
   classes, tracing hooks — runs the real test code (kept only in memory, compiled, never in a
   file in the sandbox), and checks that the code under test did not patch the helpers while it
   ran.
3. It writes one verdict line per test, authenticated with an HMAC key that exists only in this
   process's memory and on the host, to a file the driver forwards. The host ignores anything
   without a valid MAC, so printing or writing fake results, breaking IPython's error display,
   or killing the kernel can only lose points, never gain them.

What it cannot do (no in-process runner can): stop code that, *while the test calls it*, digs
into this harness's memory or rewrites the calling frame. The host flags submissions whose code
uses such machinery for human review (see `autograde.suspicious_constructs`).
"""


def install(secrets_path):  # noqa: C901 - one closure on purpose: nothing reachable by name
    import ast
    import builtins
    import hashlib
    import json
    import os
    import sys
    import time
    import types

    try:
        from _hashlib import hmac_digest as _hmac_digest
    except ImportError:  # pragma: no cover - every CPython 3.7+ has it
        import hmac

        def _hmac_digest(key, msg, digest):
            return hmac.new(key, msg, digest).digest()

    ip = get_ipython()  # noqa: F821 - provided by IPython
    with open(secrets_path, "rb") as fh:
        data = json.loads(fh.read())
    os.unlink(secrets_path)

    key = bytes.fromhex(data["key"])
    verdict_fd = os.open(data["verdict_path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    # Pristine references used on the verdict path: builtin functions and methods of immutable
    # types cannot be patched, only rebound, and these bindings live in this closure.
    _write, _perf, _settrace, _setprofile = os.write, time.perf_counter, sys.settrace, sys.setprofile
    _gettrace, _getprofile = sys.gettrace, sys.getprofile
    _sha256, _encode, _hex = hashlib.sha256, str.encode, bytes.hex
    _FunctionType, _ModuleType, _type = types.FunctionType, types.ModuleType, type
    _BaseException = BaseException
    _exec, _isinstance, _issubclass = exec, isinstance, issubclass
    _callable, _id, _list, _dict = callable, id, list, dict
    MISSING = object()

    B = builtins
    user_ns = ip.user_ns
    history_names = {"_", "__", "___", "_i", "_ii", "_iii", "In", "Out", "_ih", "_oh", "_dh", "exit", "quit",
                     "get_ipython", "_exit_code", "__builtin__", "__builtins__", "_course_grader_run"}

    def is_history(name):
        return name in history_names or (name[:1] == "_" and (name[1:].isdigit() or (name[1:2] == "i" and name[2:].isdigit())))

    for name in data.get("preimport", []):
        try:
            __import__(name)
        except BaseException:  # noqa: BLE001 - a module the section lacks is the section's problem
            pass

    # ---- snapshots ------------------------------------------------------------------------
    builtins_snap = _dict(B.__dict__)
    module_snap = {}  # name -> (module, {attr: value})
    func_snap = {}  # id -> (fn, code, defaults, kwdefaults)
    class_snap = {}  # id -> (cls, {attr: value}, strict)
    protected = {}  # user_ns name -> value bound by an instructor cell

    def snap_function(fn):
        if _type(fn) is _FunctionType:
            func_snap[_id(fn)] = (fn, fn.__code__, fn.__defaults__, fn.__kwdefaults__)

    def snap_class(cls, strict):
        try:
            attrs = _dict(cls.__dict__)
        except BaseException:  # noqa: BLE001
            return
        class_snap[_id(cls)] = (cls, attrs, strict)
        for v in attrs.values():
            if _type(v) in (staticmethod, classmethod):
                v = v.__func__
            snap_function(v)

    def is_class(v):
        return _issubclass(_type(v), _type)  # never isinstance(): it can run a student's __class__

    def is_module(v):
        return _issubclass(_type(v), _ModuleType)

    def snap_value(v, strict):
        if _type(v) is _FunctionType:
            snap_function(v)
        elif is_class(v):
            snap_class(v, strict)

    def snap_modules(names=None):
        for name, mod in _list(sys.modules.items()):
            if names is None and name in module_snap:
                continue
            if names is not None and name not in names:
                continue
            if not is_module(mod) or name == "__main__":
                continue
            try:
                items = _list(mod.__dict__.items())
            except BaseException:  # noqa: BLE001
                continue
            attrs = {}
            for k, v in items:
                if _callable(v) or is_module(v):
                    attrs[k] = v
                    if _type(v) is _FunctionType:
                        snap_function(v)
            module_snap[name] = (mod, attrs)

    def snap_library_classes():
        for modname, clsname in data.get("library_classes", []):
            mod = sys.modules.get(modname)
            cls = getattr(mod, clsname, None) if mod is not None else None
            if is_class(cls):
                snap_class(cls, False)

    snap_modules()
    snap_library_classes()

    # ---- restore / check ------------------------------------------------------------------
    def restore(full=True):
        """Put back pristine builtins, helper names and code; with `full`, library modules too."""
        _settrace(None)
        _setprofile(None)
        d = B.__dict__
        for k, v in builtins_snap.items():
            if d.get(k, MISSING) is not v:
                d[k] = v
        user_ns["__builtins__"] = B
        for k, v in protected.items():
            if user_ns.get(k, MISSING) is not v:
                user_ns[k] = v
        for fn, code, defaults, kwdefaults in func_snap.values():
            if fn.__code__ is not code:
                fn.__code__ = code
            if fn.__defaults__ is not defaults:
                fn.__defaults__ = defaults
            if fn.__kwdefaults__ is not kwdefaults:
                fn.__kwdefaults__ = kwdefaults
        if not full:
            return
        for name, (mod, attrs) in module_snap.items():
            if sys.modules.get(name, mod) is not mod:
                sys.modules[name] = mod
            d = mod.__dict__
            for k, v in attrs.items():
                if d.get(k, MISSING) is not v:
                    d[k] = v
        for cls, attrs, strict in class_snap.values():
            d = cls.__dict__
            for k, v in attrs.items():
                if d.get(k, MISSING) is not v:
                    try:
                        setattr(cls, k, v)
                    except BaseException:  # noqa: BLE001
                        pass
            if strict:
                for k in _list(d.keys()):
                    if k not in attrs:
                        try:
                            delattr(cls, k)
                        except BaseException:  # noqa: BLE001
                            pass

    def tampered(assigned):
        """Names of helpers the code under test changed while the test ran."""
        changed = []
        if _gettrace() is not None or _getprofile() is not None:
            changed.append("sys.settrace/setprofile")
        d = B.__dict__
        for k, v in builtins_snap.items():
            if d.get(k, MISSING) is not v:
                changed.append(f"builtins.{k}")
        for k, v in protected.items():
            if k not in assigned and user_ns.get(k, MISSING) is not v:
                changed.append(k)
        for fn, code, defaults, kwdefaults in func_snap.values():
            if fn.__code__ is not code or fn.__defaults__ is not defaults or fn.__kwdefaults__ is not kwdefaults:
                changed.append(getattr(code, "co_qualname", code.co_name))
        return changed

    def assigned_names(tree):
        names = set()
        for node in ast.walk(tree):
            if _isinstance(node, ast.Name) and _isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.id)
            elif _isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif _isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    names.add((alias.asname or alias.name).split(".")[0])
        return names

    # ---- instructor cells -----------------------------------------------------------------
    instructor_hashes = set(data["instructor"])
    seen_instructor = set()
    state = {"current": None, "before": None}

    def cell_hash(code):
        return _sha256(_encode(code, "utf-8", "surrogatepass")).hexdigest()

    instructor_names = {}  # hash -> (names the cell binds, has a star import)

    def names_bound_by(raw):
        try:
            tree = ast.parse(ip.transform_cell(raw))
        except BaseException:  # noqa: BLE001
            return set(), True
        star = any(_isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in ast.walk(tree))
        return assigned_names(tree), star

    def pre_run_cell(info):
        h = cell_hash(info.raw_cell)
        if h in instructor_hashes:
            if h not in instructor_names:
                instructor_names[h] = names_bound_by(info.raw_cell)
            restore(full=False)  # instructor cells run with the names the instructor bound
            state["current"], state["before"] = h, _dict(user_ns)
        else:
            state["current"], state["before"] = None, None

    def restore_builtins():
        d = B.__dict__
        for k, v in builtins_snap.items():
            if d.get(k, MISSING) is not v:
                d[k] = v
        user_ns["__builtins__"] = B

    def post_run_cell(result):
        h, before = state["current"], state["before"]
        state["current"], state["before"] = None, None
        if h is None:
            # A student's patch of builtins lasts for their own cell only: left in place it would
            # break IPython itself before the next test could even start.
            restore_builtins()
            return
        names, star = instructor_names.get(h, (set(), False))
        for k, v in _list(user_ns.items()):
            if is_history(k) or before.get(k, MISSING) is v:
                continue
            # Only names this cell's own code binds: a student function that the cell happens to
            # call must not be able to re-bind a helper and have it recorded as the reference.
            if k in names or (star and k not in before):
                protected[k] = v
                snap_value(v, strict=getattr(v, "__module__", None) == "__main__")
        snap_modules()  # modules this cell imported for the first time
        seen_instructor.add(h)

    ip.events.register("pre_run_cell", pre_run_cell)
    ip.events.register("post_run_cell", post_run_cell)

    # ---- tests ----------------------------------------------------------------------------
    tests = {}
    for tid, spec in data["tests"].items():
        filename = f"<graded test {tid}>"
        try:
            tree = ast.parse(spec["code"], filename)
            code = compile(tree, filename, "exec")
            assigned = assigned_names(tree)
        except SyntaxError as exc:  # the instructor's problem, reported as a failure of this test
            code, assigned = exc, set()
        tests[tid] = (code, filename, [tuple(r) for r in spec["hidden"]], data["nonces"][tid], assigned)
    del data["tests"]  # the sources are not kept in this process
    done = set(data.get("done", []))
    required = {tid: set(hs) for tid, hs in data.get("required", {}).items()}

    def describe(exc, filename, hidden):
        ename = _type(exc).__name__
        lineno, tb = None, exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == filename:
                lineno = tb.tb_lineno
            tb = tb.tb_next
        if lineno is not None and any(a <= lineno <= b for a, b in hidden):
            return ename, "hidden", ""
        try:
            message = str(exc)
        except BaseException:  # noqa: BLE001 - a student's exception may refuse to print
            message = ""
        return ename, "public", message

    def emit(tid, nonce, status, where, ename, message, seconds):
        ename_b = _encode(ename, "utf-8", "replace")[:200]
        msg_b = _encode(message, "utf-8", "replace")[:1500]
        line = "CGV1 %s %s %s %s %s %s %.3f" % (
            tid, nonce, status, where or "-", _hex(ename_b) or "-", _hex(msg_b) or "-", seconds)
        line_b = _encode(line, "ascii")
        mac = _hex(_hmac_digest(key, line_b, "sha256"))
        _write(verdict_fd, line_b + b" " + _encode(mac, "ascii") + b"\n")

    def run(tid, nonce):
        entry = tests.get(tid)
        if entry is None or entry[3] != nonce or tid in done:
            raise RuntimeError("this graded test cannot be run from here")
        done.add(tid)
        code, filename, hidden, _, assigned = entry
        status, where, ename, message = "fail", "", "", ""
        start = _perf()
        try:
            missing = required.get(tid, set()) - seen_instructor
            if missing:
                raise RuntimeError(f"{len(missing)} set-up cell(s) of the course did not run as the grader expects")
            if _isinstance(code, SyntaxError):
                raise code
            restore()
            _exec(code, user_ns)
            status = "pass"
        except _BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt and SystemExit are failures too
            status = "fail"
            try:
                ename, where, message = describe(exc, filename, hidden)
            except _BaseException:  # noqa: BLE001
                ename, where, message = "Error", "", ""
        finally:
            try:
                if status == "pass":
                    changed = tampered(assigned)
                    if changed:
                        status, where, ename = "fail", "public", "GraderIntegrityError"
                        message = "the code under test changed the grader's test helpers: " + ", ".join(changed[:5])
            finally:
                emit(tid, nonce, status, where, ename, message, _perf() - start)
        print(f"[grader] {tid}: {'passed' if status == 'pass' else 'failed'}")

    user_ns["_course_grader_run"] = run
