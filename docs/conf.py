"""Sphinx configuration of the kdtheory documentation site.

Do not run ``sphinx-build`` on this folder directly: ``python docs/build.py`` assembles the sources
(these pages, one API page per module, the executed notebooks, the evidence and benchmarks pages)
in a staging folder and builds them in strict mode. See ``docs/build.py``.
"""

from __future__ import annotations

import re

import kdtheory

project = "kdtheory"
author = "the kdtheory authors"
copyright = "the kdtheory authors"  # noqa: A001 - Sphinx's name
release = version = kdtheory.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_nb",
]

# The notebooks arrive executed (docs/build.py runs them in a fresh kernel of this interpreter, the
# way the test suite does); Sphinx renders their stored outputs and never re-executes them.
nb_execution_mode = "off"
nb_execution_raise_on_error = True
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "build.py", "conf.py", "README*", "**.ipynb_checkpoints"]

# Google-style docstrings (enforced by tests/test_style.py).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True
autodoc_default_options = {"member-order": "bysource"}  # docs/build.py names the members of each page
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"

# Strict cross-references: every reference to a kdtheory object must resolve (docs/build.py runs
# ``sphinx-build -W -n``). References to other libraries' objects (numpy, JAX, the standard
# library's typing names) cannot be resolved offline — intersphinx would download their inventories
# at build time — so they are the one exception, listed by prefix.
nitpicky = True
# "more than one target found": a name re-exported by the entry point (kdtheory.eigen.Recipe is
# kdtheory.filters.Recipe) has two equal targets; the link goes to either. Unresolved references
# still fail the build (nitpicky; their warning type is not ref.python).
suppress_warnings = ["ref.python"]
_EXTERNAL = (
    r"(np|numpy|npt|jax|jnp|jaxlib|scipy|sklearn|matplotlib|mpl|plt|nbformat|typing|typing_extensions|"
    r"collections|collections\.abc|abc|os|pathlib|enum|dataclasses|argparse|types|io|concurrent|threading|"
    r"builtins|optax|flax|equinox|hypothesis|functools|itertools|contextlib|json|math|tempfile|signal)(\..*)?"
)
_BUILTIN = (
    r"(int|float|complex|bool|str|bytes|None|NoneType|object|type|list|dict|tuple|set|frozenset|slice|"
    r"Ellipsis|ellipsis|callable|Any|Callable|Sequence|Mapping|Iterable|Iterator|Literal|Optional|Union|"
    r"ArrayLike|NDArray|DTypeLike|Array|Path|Self|TypeVar|Generic|Protocol|NamedTuple|ClassVar|Final|"
    r"Generator|MutableMapping|Hashable|TextIO|BinaryIO|Exception|ValueError|TypeError|RuntimeError|"
    r"KeyboardInterrupt|MemoryError|OSError|ArithmeticError|FloatingPointError|Warning|UserWarning|"
    r"RuntimeWarning|Future|Executor|Event|Figure|Axes|Pool|Lock|PRNGKey|KeyArray)"
)
nitpick_ignore_regex = [
    # private modules and names are not documented (by design); a reference to one renders as code
    (r"py:.*", r"(kdtheory\.)?(\w+\.)*_\w+.*"),
    (r"py:.*", _EXTERNAL),
    (r"py:.*", _BUILTIN),
    # a dotted name whose head is an external library's alias, e.g. "np.ndarray" or "jax.Array"
    (r"py:.*", r"[A-Za-z_]\w*\.(ndarray|Array|Axes|Figure|Generator|Mesh|Sharding|Device)"),
    # type variables and literal strings inside annotations are not objects
    (r"py:.*", r"[A-Z]|T|P|R|['\"].*['\"]|\d.*|-?\d+(\.\d*)?"),
]

html_theme = "furo"
html_title = f"kdtheory {release}"
html_static_path: list[str] = []
html_theme_options = {"navigation_with_keys": True}
html_show_sourcelink = False
pygments_style = "friendly"

# ----------------------------------------------------------------------------------------------
# Docstring hooks. The docstrings are written for ``help()`` and the terminal first (plain text with
# reST roles); these hooks adapt the few plain-text habits that reST or napoleon misread, so that the
# package's files need no markup for the site's sake.

# ``docs/theory.md §N`` in a docstring becomes a link to that section of the theory page; a section
# number the page does not have fails the build (an undefined label).
_CITATION = re.compile(r"(?<![`\w])docs/theory\.md (§(\d+)(?:[,–-]\s*§?\d+)*)")
# a literal, a role or a hyperlink target: left alone by the ``|`` escaping below
_PROTECTED = re.compile(r"(``.+?``|:[\w:]+:`[^`]*`|`[^`]*`_?)")
# a napoleon ``:type:`` that is a type expression, not the first words of a sentence
_TYPE_EXPR = re.compile(r"^[\w.]+(\[[\w.,| \[\]]*\])?( \| [\w.]+(\[[\w.,| \[\]]*\])?)*$")


def _escape_bars(lines):
    """``|`` in running text (``p(·|x)``, ``|d_s|``) is text, not a reST substitution reference."""
    math_indent = None
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if math_indent is not None and stripped and indent <= math_indent:
            math_indent = None
        if stripped.startswith(".. math::"):
            math_indent = indent
            rest = stripped[len(".. math::") :]
            if rest.strip():  # one-line math directive: its argument is math
                continue
            continue
        if math_indent is not None or stripped.startswith(("|", "+-", "+=")) or "|" not in line:
            continue
        parts = _PROTECTED.split(line)
        lines[i] = "".join(p if j % 2 else re.sub(r"(?<!\\)\|", r"\\|", p) for j, p in enumerate(parts))


def _before_napoleon(app, what, name, obj, options, lines):  # noqa: ARG001 - Sphinx's event signature
    _escape_bars(lines)
    for i, line in enumerate(lines):
        lines[i] = _CITATION.sub(lambda m: f":ref:`docs/theory.md {m.group(1)} <theory-s{m.group(2)}>`", line)


def _after_napoleon(app, what, name, obj, options, lines):  # noqa: ARG001 - Sphinx's event signature
    # ``Attributes: a, b: text`` -> one ``:ivar:`` per name (Sphinx would read ``a,`` as a type)
    out = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*):ivar ([\w]+(?:,\s*\w+)+): ?(.*)$", lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        body = [m.group(3)]
        i += 1
        while i < len(lines) and lines[i].startswith(m.group(1) + " ") and lines[i].strip():
            body.append(lines[i])
            i += 1
        for field in re.split(r",\s*", m.group(2)):
            out += [f"{m.group(1)}:ivar {field}: {body[0]}", *body[1:]]
    lines[:] = out
    # an attribute's docstring whose first sentence has a colon: napoleon took its start for a type
    if what in {"attribute", "data", "property"}:
        for i, line in enumerate(lines):
            if line.startswith(":type: ") and not _TYPE_EXPR.match(line[7:].strip()):
                words = line[7:].strip()
                del lines[i]
                while lines and not lines[-1].strip():
                    lines.pop()
                first = next(k for k, text in enumerate(lines) if text.strip())
                lines[first] = f"{words}: {lines[first].lstrip()}"
                break


def _canonical(app, env, node, contnode):
    """Resolve a short or re-exported kdtheory name that Sphinx's own search left unresolved.

    A name resolves when every documented object whose dotted name ends with it is the *same*
    Python object (``Spectrum`` in :mod:`kdtheory.filters` is :class:`kdtheory.spectrum.Spectrum`,
    also documented as ``kdtheory.eigen.Spectrum``), or when it names a field of the enclosing class
    (documented in that class's ``Attributes``). Anything else stays unresolved and fails the build.
    """
    import importlib

    from sphinx.util.nodes import make_refnode

    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    domain = env.get_domain("py")

    def load(dotted):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                return None
            return obj
        return None

    objects = domain.data["objects"]
    # a re-export (``kdtheory.confidence.analyze`` defined in ``kdtheory.confidence.report``): the
    # object's own dotted name, where its page documents it
    for dotted in (target, f"{node.get('py:module') or ''}.{target}"):
        obj = load(dotted) if dotted.startswith("kdtheory") else None
        home = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
        if obj is not None and home != dotted and home in objects:
            entry = objects[home]
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, home)
    cands = [n for n in objects if n == target or n.endswith("." + target)]
    if cands:
        distinct = {id(load(n)) for n in cands}
        if len(distinct) == 1 and load(cands[0]) is not None:
            obj = load(cands[0])
            home = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
            name = home if home in cands else sorted(cands, key=len)[0]
            entry = objects[name]
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)
    mod = node.get("py:module") or ""
    cls = node.get("py:class")
    # a field of a documented class (``:attr:`low``` inside ``Interval``, or ``Interval.low``): link
    # the class, whose ``Attributes`` describe it
    owner, _, field = target.rpartition(".")
    if cls and not owner:
        owners = [f"{mod}.{cls}"]
    else:
        owners = [n for n in objects if owner and (n == owner or n.endswith("." + owner))]
    for name in owners:
        holder = load(name)
        if name in objects and holder is not None and _has_field(holder, field or target):
            entry = objects[name]
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)
    # a public name that exists in the docstring's module but is not part of the documented API
    # (a module constant outside ``__all__``): rendered as code, unlinked; a name that does not
    # exist there stays unresolved and fails the build
    if mod.startswith("kdtheory") and "." not in target and hasattr(load(mod), target):
        return contnode
    return None


def _has_field(cls, name: str) -> bool:
    import inspect

    if not isinstance(cls, type):
        return False
    fields = set(getattr(cls, "__dataclass_fields__", {})) | set(getattr(cls, "_fields", ()))
    fields |= set(getattr(cls, "__annotations__", {}))
    try:
        fields |= set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        pass
    init = getattr(cls.__init__, "__code__", None)  # instance attributes set in __init__ (``self.path = ...``)
    in_init = init is not None and name in init.co_names
    return name in fields or isinstance(getattr(cls, name, None), property) or in_init


def _signature(app, what, name, obj, options, signature, return_annotation):  # noqa: ARG001 - Sphinx's event
    # a dataclass field with a default factory shows as ``=<factory>``, which Sphinx cannot parse
    # (it then splits the signature at every comma, ``dict[str`` included); show ``= ...``
    if signature and "<factory>" in signature:
        return signature.replace("<factory>", "..."), return_annotation
    return None


def setup(app):
    """Register the docstring hooks and the re-export resolver."""
    app.connect("autodoc-process-signature", _signature)
    app.connect("autodoc-process-docstring", _before_napoleon, priority=100)
    app.connect("autodoc-process-docstring", _after_napoleon, priority=900)
    app.connect("missing-reference", _canonical)
