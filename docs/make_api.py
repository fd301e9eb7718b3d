"""Write docs/api.md, the API reference, from the public names and docstrings of evsim.

    python docs/make_api.py           # rewrite docs/api.md
    python docs/make_api.py --check   # exit 1 if docs/api.md is out of date

Each module's ``__all__`` lists its public names; each entry shows the
signature and the docstring as written in the code.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
from collections.abc import Mapping
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "api.md"

#: (module, heading) in reading order: the data flow, then analysis and output.
MODULES = [
    ("evsim", "evsim: the top level"),
    ("evsim.options", "evsim.options: conversion options and method presets"),
    ("evsim.tune", "evsim.tune: searching conversion options"),
    ("evsim.errors", "evsim.errors: exceptions and warnings"),
    ("evsim.validate", "evsim.validate: checks of images, labels and arguments"),
    ("evsim.io", "evsim.io: reading and writing networks"),
    ("evsim.models", "evsim.models: bundled models"),
    ("evsim.data", "evsim.data: data sets"),
    ("evsim.data.scenes", "evsim.data.scenes: scenes for segmentation and detection"),
    ("evsim.simulate", "evsim.simulate: simulation results"),
    ("evsim.simulation_options", "evsim.simulation_options: simulation options"),
    ("evsim.engines", "evsim.engines: the engine registry and runners"),
    ("evsim.comparison", "evsim.comparison: comparing conversion methods"),
    ("evsim.cellstore", "evsim.cellstore: resuming a comparison"),
    ("evsim.distributed", "evsim.distributed: running on a Dask cluster"),
    ("evsim.analysis.stats", "evsim.analysis.stats: spike statistics and conversion error"),
    ("evsim.analysis.energy", "evsim.analysis.energy: operations and energy"),
    ("evsim.analysis.summary", "evsim.analysis.summary: accuracy, SOPs and energy versus T"),
    ("evsim.analysis.neurobench", "evsim.analysis.neurobench: NeuroBench metrics"),
    ("evsim.tasks", "evsim.tasks: decoding readouts into masks and boxes"),
    ("evsim.tasks.detection", "evsim.tasks.detection: the CenterNet-style head"),
    ("evsim.analysis.segmentation", "evsim.analysis.segmentation: mIoU and pixel accuracy"),
    ("evsim.analysis.detection", "evsim.analysis.detection: COCO-style mAP"),
    ("evsim.analysis.fidelity", "evsim.analysis.fidelity: task fidelity to the ANN"),
    ("evsim.plot", "evsim.plot: figures"),
    ("evsim.report", "evsim.report: report folders"),
    ("evsim.explorer", "evsim.explorer: the interactive explorer page"),
    ("evsim.extras", "evsim.extras: optional dependencies"),
]



def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def _doc(obj) -> str:
    doc = inspect.getdoc(obj) or "(no docstring)"
    return doc.strip()


def _entry(module_name: str, name: str, obj, seen: dict) -> list[str]:
    home = f"{obj.__module__}.{obj.__qualname__}" if hasattr(obj, "__qualname__") and hasattr(
        obj, "__module__") else None
    if home is not None and home in seen and seen[home] != module_name:
        return [f"- `{name}`: see `{seen[home]}`", ""]
    if home is not None:
        seen[home] = module_name
    if inspect.isclass(obj):
        lines = [f"### class `{name}{_signature(obj)}`", "", _doc(obj), ""]
        for member, value in vars(obj).items():
            if member.startswith("_"):
                continue
            if isinstance(value, property):
                lines += [f"- `{member}` (property): {_doc(value).splitlines()[0]}"
                          if value.__doc__ else f"- `{member}` (property)"]
            elif inspect.isfunction(value):
                lines += [f"- `{member}{_signature(value)}`: "
                          + " ".join(_doc(value).split("\n\n")[0].split())]
        return lines + [""]
    if callable(obj):
        return [f"### `{name}{_signature(obj)}`", "", _doc(obj), ""]
    text = re.sub(r" at 0x[0-9a-f]+", "", repr(obj))  # addresses change from run to run
    if isinstance(obj, Mapping) and len(text) >= 300:
        return [f"### `{name}`", "", f"a mapping with keys {', '.join(f'`{k}`' for k in obj)}", ""]
    return [f"### `{name}`", "", f"`{text}`" if len(text) < 300 else
            f"a `{type(obj).__name__}`", ""]


def render() -> str:
    lines = ["# evsim API reference", "",
             "Generated from the code by `python docs/make_api.py`; do not edit by hand.",
             "Each section lists a module's public names (its `__all__`).", ""]
    seen: dict[str, str] = {}
    for module_name, heading in MODULES:
        module = importlib.import_module(module_name)
        lines += [f"## {heading}", "", _doc(module).split("\n\n")[0], ""]
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                lines += [f"- `{module_name}.{name}`: a submodule", ""]
                continue
            lines += _entry(module_name, name, obj, seen)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that api.md is current")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date; run python docs/make_api.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
