"""The module's shape, read with ast: its sections (``# ---- Name ----``) stand in the order its
docstring's map lists them, each uses no name defined by a later one (it reads top to bottom like
a book), and build_zipapp.py tells the truth about the module's size."""

import ast
import os
import re

import zeroimage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BANNER = re.compile(r"# ---- (.+) ----$")


def _source():
    with open(os.path.join(ROOT, "zeroimage.py"), encoding="utf-8") as f:
        return f.read()


def _sections(lines):
    """(line number, name) of each banner, in order."""
    return [(number, match.group(1)) for number, line in enumerate(lines, 1) for match in [BANNER.match(line)] if match]


def _section_of(banners, line):
    name = None
    for number, banner in banners:
        if number <= line:
            name = banner
    return name


def _bound_names(node):
    """What a top-level definition binds inside itself (parameters, locals, imports, nested names):
    a use of such a name is not a use of the module-level one."""
    bound = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
            bound.add(inner.id)
        elif isinstance(inner, ast.arg):
            bound.add(inner.arg)
        elif isinstance(inner, ast.ExceptHandler) and inner.name:
            bound.add(inner.name)
        elif isinstance(inner, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in inner.names)
        elif isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and inner is not node:
            bound.add(inner.name)
    return bound


def _defined(node):
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)]
    return []


def later_uses(source):
    """(name, where it is defined, where it is used, line) for each use of a module-level name in a
    section above the one that defines it."""
    lines = source.splitlines()
    banners = _sections(lines)
    order = {name: index for index, (_, name) in enumerate(banners)}
    tree = ast.parse(source)
    defined = {}
    for node in tree.body:
        for name in _defined(node):
            defined.setdefault(name, _section_of(banners, node.lineno))
    found = []
    for node in tree.body:
        section = _section_of(banners, node.lineno)
        if section is None:
            continue
        bound = set() if isinstance(node, (ast.Assign, ast.AnnAssign)) else _bound_names(node)
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and inner.id in defined and inner.id not in bound:
                home = defined[inner.id]
                if home is not None and order[home] > order[section]:
                    found.append((inner.id, home, section, inner.lineno))
    return found


def test_no_section_uses_a_name_from_a_later_one():
    assert later_uses(_source()) == []


def test_the_check_finds_a_use_from_below():
    """The check itself: a function that calls one defined in a later section is found; a local
    name that only shares the name is not."""
    source = ("# ---- A ----\ndef a():\n    return b()\n\n\ndef c(b):\n    return b\n"
              "# ---- B ----\ndef b():\n    return 1\n")
    assert later_uses(source) == [("b", "B", "A", 3)]


def test_the_docstring_maps_every_section_in_order():
    lines = _source().splitlines()
    sections = [name for _, name in _sections(lines)]
    doc = zeroimage.__doc__
    mapped = doc[doc.index("Foundations"):]
    positions = []
    for name in sections:
        match = re.search(r"(?m)^ +(?:.*, )?%s(?=[,:]| {2}| \(|$)" % re.escape(name), mapped)
        assert match, "the module's map does not list the section %r" % name
        positions.append(match.start())
    assert positions == sorted(positions), "the map lists the sections in another order than the module: %s" % (
        sections,)
    assert sections[0] == "Constants" and sections[-1] == "CLI"


def test_build_zipapp_tells_the_size_of_the_module_it_compiles():
    """build_zipapp.py says why it puts bytecode in the archive with the module's size: about N,000
    lines, N within one thousand of the truth."""
    with open(os.path.join(ROOT, "build_zipapp.py"), encoding="utf-8") as f:
        said = re.search(r"about (\d+),000 lines", f.read())
    assert said, "build_zipapp.py's docstring no longer says the module's size"
    assert abs(int(said.group(1)) * 1000 - len(_source().splitlines())) <= 1000



def test_the_docstring_names_every_operation_that_takes_a_session():
    """Each command's library function (``copy`` was left out) is in the docstring's list, and takes
    ``session=`` as the list says."""
    import argparse
    import inspect
    said = zeroimage.__doc__.split("As a library:", 1)[1].split("takes an optional", 1)[0]
    listed = set(re.findall(r"``(\w+)``", said))
    commands = next(a for a in zeroimage.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    function_of = {verb: function for function, verb in zeroimage._CLI_VERBS.items()}
    operations = {function_of.get(verb, verb.replace("-", "_")) for verb in commands.choices}
    assert listed == operations, (sorted(operations - listed), sorted(listed - operations))
    for name in operations:
        assert "session" in inspect.signature(getattr(zeroimage, name)).parameters, name
