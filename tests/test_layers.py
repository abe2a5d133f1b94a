"""The layout's contract: packages import only downward, and no module imports itself back.

Layers of the daemon, top to bottom (a package may import those below it, never above):

    chargepoint.cli -> chargepoint.service -> chargepoint.csms -> chargepoint.core
      -> chargepoint.proof -> chargepoint.store -> chargepoint.config -> meter

`chargepoint.testcsms` is a tool of its own (only the CLI and the tests use it);
`chargepoint.ocppschema` (the OCPP schemas compiled) serves both it and `chargepoint.csms` and
imports nothing of the project; `meter` knows nothing of `chargepoint`. Inside `meter`:
stationsign -> sim -> bsm -> modbus / proof -> the interface modules at the top of `meter`.

Every import counts, also those inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("chargepoint", "meter")

# package -> the packages (of this project) it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "meter": ("chargepoint",),
    "meter.modbus": ("meter.bsm", "meter.sim", "meter.stationsign", "meter.proof"),
    "meter.proof": ("meter.bsm", "meter.sim", "meter.stationsign", "meter.modbus"),
    "meter.bsm": ("meter.sim", "meter.stationsign"),
    "meter.sim": ("meter.stationsign",),
    "chargepoint.config": (
        "chargepoint.store",
        "chargepoint.proof",
        "chargepoint.core",
        "chargepoint.csms",
        "chargepoint.service",
        "chargepoint.cli",
        "chargepoint.testcsms",
    ),
    "chargepoint.store": (
        "chargepoint.proof",
        "chargepoint.core",
        "chargepoint.csms",
        "chargepoint.service",
        "chargepoint.cli",
        "chargepoint.testcsms",
    ),
    "chargepoint.proof": (
        "chargepoint.core",
        "chargepoint.csms",
        "chargepoint.service",
        "chargepoint.cli",
        "chargepoint.testcsms",
    ),
    "chargepoint.core": (
        "chargepoint.csms",
        "chargepoint.service",
        "chargepoint.cli",
        "chargepoint.testcsms",
    ),
    "chargepoint.csms": ("chargepoint.service", "chargepoint.cli", "chargepoint.testcsms"),
    "chargepoint.service": ("chargepoint.cli", "chargepoint.testcsms"),
    # the web page: a process beside the daemon that reads the store and talks to the daemon
    # through the control interface only (service.control), never through its insides
    "chargepoint.web": (
        "chargepoint.cli",
        "chargepoint.testcsms",
        "chargepoint.csms",
        "chargepoint.core",
        "chargepoint.service.daemon",
        "chargepoint.service.meters",
        "chargepoint.service.lifecycle",
    ),
    "chargepoint.testcsms": (
        "chargepoint.cli",
        "chargepoint.service",
        "chargepoint.csms",
        "chargepoint.core",
        "chargepoint.store",
    ),
}
# the compiled OCPP schemas import nothing of the project
FORBIDDEN["chargepoint.ocppschema"] = (
    "meter",
    *(
        f"chargepoint.{package}"
        for package in ("config", "store", "proof", "core", "csms", "service", "cli", "web")
    ),
    "chargepoint.testcsms",
)
# the packages a core module may not name at all: the core knows no meter model
CORE_MUST_NOT_IMPORT = ("meter.bsm", "meter.sim", "meter.modbus", "meter.stationsign")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The project modules `name` imports (a `from pkg import mod` counts as `pkg.mod`)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in known else base


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imports_of(name, path, known)) - {name} for name, path in known.items()}


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_no_package_imports_a_layer_above_it() -> None:
    wrong = []
    for module, targets in graph().items():
        for package, forbidden in FORBIDDEN.items():
            if not inside(module, package):
                continue
            wrong += [f"{module} imports {t}" for t in targets for f in forbidden if inside(t, f)]
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_nothing_but_the_entry_points_imports_the_cli() -> None:
    wrong = [
        f"{m} imports {t}"
        for m, targets in graph().items()
        for t in targets
        if inside(t, "chargepoint.cli")
        and not inside(m, "chargepoint.cli")
        and m != "chargepoint.__main__"
    ]
    assert not wrong, "\n".join(wrong)


def test_the_core_knows_no_meter_model() -> None:
    wrong = [
        f"{m} imports {t}"
        for m, targets in graph().items()
        if inside(m, "chargepoint.core")
        for t in targets
        for f in CORE_MUST_NOT_IMPORT
        if inside(t, f)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_only_entry_points_are_flat_in_chargepoint() -> None:
    flat = sorted(p.name for p in (ROOT / "chargepoint").glob("*.py"))
    assert flat == ["__init__.py", "__main__.py"]


@pytest.mark.parametrize("package", [p for p in FORBIDDEN if p.startswith("chargepoint.")])
def test_each_layer_is_a_package(package: str) -> None:
    assert (ROOT / package.replace(".", "/") / "__init__.py").is_file()


def test_the_demo_finds_its_default_config() -> None:
    from chargepoint.cli.demo import DEFAULT_CONFIG

    assert DEFAULT_CONFIG == ROOT / "config" / "simulator.yaml"
    assert DEFAULT_CONFIG.is_file()
