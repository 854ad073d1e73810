"""`python -m stages.methods [PARAMS]`: the methods found in baselines/, and why any entry was rejected.
`python -m stages.methods new NAME [--numpy | --torch] [--trains]`: write a working method package
``baselines/NAME/`` from a template (``alabench.scaffold``) and print what to add to params.yaml.

Not a DVC stage: a listing for people. For each method: what it addresses, whether it trains,
its knobs (defaults, and the values params.yaml sets under `methods.<name>`), and whether
params.yaml runs it. Then every entry that could not be used, with the reason (an import error, a
missing attribute, a misnamed method, a loose .py file), and every entry of params.yaml that does not fit. Exit 1
when something is rejected or does not fit, 0 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from alabench.cascade import cascade_method
from alabench.config import ParamError, Params, load_params
from alabench.errors import UserError
from alabench.methods import BASELINES_DIR, Discovery, discover
from alabench.released import as_configured
from alabench.scaffold import next_steps, template_kind, write_method_package
from alabench.training import OVERRIDES


def listing(found: Discovery, params: Params | None) -> tuple[list[str], int]:
    """Lines to print and the number of problems found."""
    lines, problems = [f"methods in {BASELINES_DIR.name}/: {len(found.methods)}"], 0
    for name, m in found.methods.items():
        tasks = " + ".join(sorted(m.tasks))
        runs = ""
        if params is not None:
            runs = ("  [in train.methods]" if name in params.train.methods else
                    "  [in evaluate.methods]" if name in params.evaluate.methods else "  [not run]")
        lines.append(f"  {name:<14} {tasks:<21} {'trains' if m.trains else 'fixed':<7}{runs}")
        if m.description:
            lines.append(f"  {'':<14} {m.description}")
        if m.options is not None:
            knobs = ", ".join(f"{f.name}={f.default!r}" + (f" (over {f.metadata[OVERRIDES]})" if OVERRIDES in f.metadata
                                                          else "") for f in dataclasses.fields(m.options))
            lines.append(f"  {'':<14} options (defaults): {knobs}")
        if params is not None and params.methods.get(name):
            try:
                m.options_from(params)
                lines.append(f"  {'':<14} params.yaml sets: {params.methods[name]}")
            except ParamError as err:
                lines.append(f"  {'':<14} REJECTED params: {err}")
                problems += 1
    if found.rejected:
        lines.append(f"rejected entries of {BASELINES_DIR.name}/: {len(found.rejected)}")
        lines += [f"  {file}: {why}" for file, why in found.rejected.items()]
        problems += len(found.rejected)
    if params is not None:
        for key, names in (("train.methods", params.train.methods), ("evaluate.methods", params.evaluate.methods),
                           ("methods", list(params.methods))):
            for name in names:
                if name not in found.methods and f"{name}/" not in found.rejected:
                    lines.append(f"params.yaml: {key} names '{name}', but no baselines/{name}/ defines it "
                                 f"(`python -m stages.methods new {name}` writes one)")
                    problems += 1
        configured = {name: as_configured(m, params) for name, m in found.methods.items()
                      if name in {*params.train.methods, *params.evaluate.methods}}  # methods.<m>.weights set: untrained
        for name in params.train.methods:
            if name in configured and not configured[name].trains:
                lines.append(f"params.yaml: train.methods names '{name}', which does not train: "
                             "move it to evaluate.methods")
                problems += 1
        for name in params.evaluate.methods:
            if name in configured and configured[name].trains:
                lines.append(f"params.yaml: evaluate.methods names '{name}', which trains: move it to train.methods")
                problems += 1
        if params.evaluate.cascades:
            lines.append(f"cascades in evaluate.cascades: {len(params.evaluate.cascades)}")
        else:  # say that they exist: a cascade has no folder of its own to be listed by
            deblur = [n for n, m in sorted(found.methods.items()) if "deblur" in m.tasks and m.trains]
            interpolate = [n for n, m in sorted(found.methods.items()) if "interpolate" in m.tasks and m.trains]
            lines.append("cascades: none in evaluate.cascades. A cascade deblurs with one trained method, then "
                         "interpolates with another, e.g. {deblur: nafnet, interpolate: superslomo} -> "
                         "cascade_nafnet_superslomo (docs/methods.md)")
            lines.append(f"  deblur: {', '.join(deblur)}; interpolate: {', '.join(interpolate)}")
        for spec in params.evaluate.cascades:  # composed by params alone (alabench.cascade)
            try:
                cascade = cascade_method(spec, found)
                lines.append(f"  {spec.name:<14} {'deblur + interpolate':<21} {'fixed':<7}  [in evaluate.cascades]")
                lines.append(f"  {'':<14} {cascade.description}")
            except UserError as err:
                lines.append(f"  {spec.name:<14} REJECTED: {err}")
                problems += 1
    return lines, problems


def new(argv: list[str]) -> int:
    """``new NAME [--numpy | --torch] [--trains]``: write the package, print the next steps."""
    parser = argparse.ArgumentParser(prog="python -m stages.methods new",
                                     description="write a working method package baselines/NAME/ from a template")
    parser.add_argument("name")
    arrays = parser.add_mutually_exclusive_group()
    arrays.add_argument("--numpy", dest="arrays", action="store_const", const="numpy",
                        help="per-frame numpy functions deblur(frame), interpolate(a, b) (the default)")
    arrays.add_argument("--torch", dest="arrays", action="store_const", const="torch",
                        help="per-frame torch functions, or with --trains a trainable network")
    parser.add_argument("--trains", action="store_true", help="a network the train stage trains (needs --torch)")
    args = parser.parse_args(argv)
    try:
        kind = template_kind(args.arrays or ("torch" if args.trains else "numpy"), args.trains)
        path = write_method_package(args.name, kind)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    params = None
    try:
        params = load_params(Path("params.yaml"))
    except UserError:
        pass  # the steps still print, with "..." for the current list
    print(f"wrote {path.relative_to(BASELINES_DIR.parent)} ({kind} template): it runs as it is; replace its body")
    print(next_steps(args.name, args.trains, params))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["new"]:
        return new(argv[1:])
    params = None
    try:
        params = load_params(Path(argv[0]) if argv else Path("params.yaml"))
    except UserError as err:
        print(f"(params not checked: {err})")
    lines, problems = listing(discover(), params)
    print("\n".join(lines))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
