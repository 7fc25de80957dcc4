"""The suite's own shape (issue 24 item 7), read from its source with ast: every test file stands alone
(no test file, and no helper module, imports a test file: what several share lives in the helper
modules or in conftest.py), and every test checks what it means to prove, not only that nothing
raised or that the command exited 0."""

import ast
import functools
import os

TESTS = os.path.dirname(os.path.abspath(__file__))
# Calls that check by themselves, whatever the suite defines.
PYTEST_CHECKS = {"raises", "fail", "warns", "deprecated_call", "skip", "xfail", "importorskip"}
# Checkers of success alone: a test whose only checks are these and asserts of an exit status 0
# proves that something ran, not what it made (run_cli's own check: whatever it wrote is a valid image).
STATUS_ONLY = {"ok", "run_cli", "check_output_of"}


@functools.lru_cache(maxsize=None)
def _sources():
    """{file name: parsed module} of every Python file of tests/."""
    trees = {}
    for name in sorted(os.listdir(TESTS)):
        if name.endswith(".py"):
            with open(os.path.join(TESTS, name), encoding="utf-8") as f:
                trees[name] = ast.parse(f.read(), name)
    return trees


def _imported_test_modules(tree):
    """(line, module) of every import of a test file: import, from ... import (a package's or a relative
    one too), importlib.import_module and __import__ of a constant name."""
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module] if module else []
            if module in ("", "tests"):
                names += [(module + "." if module else "") + alias.name for alias in node.names]
        elif isinstance(node, ast.Call) and _called(node) in ("import_module", "__import__") and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            names = [node.args[0].value]
        found += [(node.lineno, name) for name in names if name.split(".")[-1].startswith("test_")]
    return found


def test_no_file_of_the_suite_imports_a_test_file():
    """Shared helpers live in the helper modules (helpers.py, binaries.py, imagetools.py, clients.py,
    registries.py, ...) and shared fixtures in conftest.py; a test file imports none of its siblings,
    so each can be read, run and changed alone."""
    found = ["%s:%d imports %s" % (name, line, module) for name, tree in _sources().items()
             for line, module in _imported_test_modules(tree)]
    assert not found, "move what they share to a helper module or conftest.py:\n" + "\n".join(found)


def _called(call):
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


class _Suite:
    """Who checks, resolved the way Python would: a bare name to the file's own function or to what it
    imported from a helper module, ``module.name`` to that module's, ``obj.name`` to any method so named."""

    def __init__(self, trees):
        self.functions, self.methods, self.imports, self.modules = {}, {}, {}, {}
        for file, tree in trees.items():
            module = file[:-3]
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions[(module, node.name)] = node
                elif isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            self.methods.setdefault(item.name, []).append((module, item))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    for alias in node.names:
                        self.imports[(module, alias.asname or alias.name)] = (node.module, alias.name)
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        self.modules[(module, alias.asname or alias.name)] = alias.name
        self.checking = set()
        changed = True
        while changed:                          # a fixed point: a function checks when it calls one that does
            changed = False
            for key, module, node in [(key, key[0], node) for key, node in self.functions.items()] + [
                    (("method", name), module, node) for name, nodes in self.methods.items() for module, node in nodes]:
                if key not in self.checking and self.checks(module, node):
                    self.checking.add(key)
                    changed = True

    def resolve(self, module, call):
        """The key of the suite's function a call names (None: not the suite's), or "pytest" for its checks."""
        func = call.func
        if isinstance(func, ast.Name):
            key = (module, func.id)
            for _ in range(5):                  # follow re-exports a few steps
                if key in self.functions:
                    return key
                if key not in self.imports:
                    return None
                source, name = self.imports[key]
                if source == "pytest":
                    return "pytest" if name in PYTEST_CHECKS else None
                key = (source, name)
            return None
        if isinstance(func, ast.Attribute):
            owner = self.modules.get((module, func.value.id)) if isinstance(func.value, ast.Name) else None
            if owner == "pytest":
                return "pytest" if func.attr in PYTEST_CHECKS else None
            if owner is not None:
                return (owner, func.attr) if (owner, func.attr) in self.functions else None
            return ("method", func.attr) if func.attr in self.methods else None
        return None

    def checks(self, module, node):
        """Whether ``node`` asserts, or calls something of the suite's that checks."""
        return any(isinstance(n, ast.Assert) for n in ast.walk(node)) or self.calls_a_check(module, node)

    def calls_a_check(self, module, node, ignore=()):
        """Whether ``node`` calls pytest's checks or one of the suite's functions that check (but ``ignore``)."""
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            key = self.resolve(module, call)
            if key == "pytest" or (key in self.checking and key[1] not in ignore):
                return True
        return False


def _tests(trees):
    for name, tree in trees.items():
        if name.startswith("test_"):
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                    yield name[:-3], node


def _status_only(test):
    """An assert that only compares an exit status (``r.returncode == 0``, ``code == 0``, ``main(...) == 0``,
    ``X[0] == 0``) or says no traceback was printed, alone or joined with ``and``."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return all(_status_only(value) for value in test.values)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right = test.left, test.comparators[0]
        if isinstance(test.ops[0], ast.Eq) and isinstance(right, ast.Constant) and right.value == 0:
            return True
        if isinstance(test.ops[0], ast.NotIn) and isinstance(left, ast.Constant) and left.value == "Traceback":
            return True
    return False


@functools.lru_cache(maxsize=None)
def _suite():
    return _Suite(_sources())


def test_every_test_checks_something():
    trees, suite = _sources(), _suite()
    silent = ["%s.py:%d %s" % (module, node.lineno, node.name) for module, node in _tests(trees)
              if not suite.checks(module, node)]
    assert not silent, "tests that assert nothing:\n" + "\n".join(silent)


def test_no_test_checks_only_an_exit_status():
    """A test whose only checks are ``ok(...)`` and asserts of an exit status 0 proves that a command
    ran; each says what it made or did (the output, the file written, the digest)."""
    trees, suite = _sources(), _suite()
    weak = ["%s.py:%d %s" % (module, node.lineno, node.name) for module, node in _tests(trees)
            if all(_status_only(n.test) for n in ast.walk(node) if isinstance(n, ast.Assert))
            and not suite.calls_a_check(module, node, STATUS_ONLY)]
    assert not weak, "tests that check only an exit status:\n" + "\n".join(weak)


def test_the_checks_themselves():
    """The scans find what they look for."""
    source = ("import test_units\nfrom test_cli import ok\nfrom tests.test_x import y\nfrom tests import test_z\n"
              "import importlib\nimportlib.import_module('test_w')\nimport helpers\nfrom imagetools import run_cli\n")
    assert [m for _, m in _imported_test_modules(ast.parse(source))] == [
        "test_units", "test_cli", "tests.test_x", "tests.test_z", "test_w"]
    weak = ast.parse("def test_a(r):\n    assert r.returncode == 0 and 'Traceback' not in r.stderr\n"
                     "def test_b(r):\n    assert r.returncode == 0 and r.stdout == 'x'\n").body
    assert [all(_status_only(n.test) for n in ast.walk(f) if isinstance(n, ast.Assert)) for f in weak] == [True, False]
