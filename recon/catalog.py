"""The method catalogue as text: ``recon methods`` (one line per method, or one method in full), the hint for
``recon reconstruct FILE --method '?'``, and the Markdown method reference of the docs (docs/reference/methods.md).

Everything comes from the method registry (:mod:`recon.methods`), the prior registry and the weights' cards,
so the docs, the CLI and the napari widget cannot disagree.
"""

from __future__ import annotations

from recon.errors import UserError


def spec_id(spec: str) -> str:
    """``ct-parallel`` or ``ct-parallel/1`` -> ``ct-parallel/1``; UserError naming the specs for anything else."""
    from recon.io.specs import spec_names

    names = spec_names()
    full = spec if "/" in spec else f"{spec}/1"
    if full not in names:
        raise UserError(f"unknown spec {spec!r}", key="--spec", fix=f"choose one of {', '.join(names)}")
    return full


def methods_for(spec: str | None = None) -> list:
    """The registered methods (accepting ``spec``, when given), by family then name."""
    from recon.methods import all_methods

    chosen = [m for m in all_methods() if spec is None or spec_id(spec) in m.specs]
    return sorted(chosen, key=lambda m: (m.family.lower(), m.name))


def usable_weights(method, priors: list[str]) -> list[str]:
    """Shipped weights ``method`` can run with: those of its priors (a prior named like the weights, e.g.
    ``drunet-ct``) and its own (named ``METHOD-SPEC``, e.g. ``unfolded-ista-sparse-linear``)."""
    from recon.weights import all_cards

    return [name for name in all_cards() if name in priors or name.startswith(f"{method.name}-")]


def _short(spec: str) -> str:
    return spec.removesuffix("/1")


def method_lines(spec: str | None = None) -> str:
    """``recon methods [--spec SPEC]``: one line per method (name, family, specs) and how to learn more."""
    chosen = methods_for(spec)
    rows = [(m.name, m.family, ", ".join(map(_short, m.specs))) for m in chosen]
    rows.insert(0, ("method", "family", "specs"))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{name:<{widths[0]}}  {family:<{widths[1]}}  {specs}" for name, family, specs in rows]
    where = f" that accept {spec_id(spec)} files" if spec else ""
    lines.append(f"\n{len(chosen)} methods{where}. `recon methods NAME` shows one method's parameters, priors and "
                 "weights.")
    return "\n".join(lines)


def describe_method(name: str) -> str:
    """``recon methods NAME``: summary, specs, parameters with defaults, priors and the shipped weights."""
    from recon.methods import compatible_priors, get_method
    from recon.weights import all_cards, describe_card

    method = get_method(name)
    lines = [f"{method.name} ({method.family}): {method.summary}",
             f"specs: {', '.join(method.specs)}", "",
             "parameters (--set NAME=VALUE):" if method.params else "parameters: none"]
    lines += [f"  {param.describe()}" for param in method.params]
    lines += ["", f"volumes beyond --memory: {streaming_line(method)}"]
    if method.prior_capability:
        priors = compatible_priors(method)
        lines += ["", f"priors (--prior NAME): default {method.default_prior}; any with {method.prior_capability} "
                      f"on {method.prior_dims}D data: {', '.join(priors)}"]
        weights = usable_weights(method, priors)
    else:
        lines += ["", "priors: takes none"]
        weights = usable_weights(method, [])
    cards = all_cards()
    if weights:
        lines += ["", "shipped weights it can use (recon/weights, each with a JSON card):"]
        for weight in weights:
            what, trained_on, validation = describe_card(cards[weight])
            lines.append(f"  {weight}: {what}; trained on {trained_on}; {validation}")
    lines += ["", f"example: recon reconstruct FILE.h5 --method {method.name}"]
    return "\n".join(lines)


def streaming_line(method) -> str:
    """How ``recon reconstruct`` splits a volume for ``method`` when it exceeds the memory budget."""
    if method.slice_separable is True:
        return "streamed in slabs of slices, the same result as whole"
    if method.halo is not None:
        separable = " (in plain slabs where its parameters make it slice-separable)" if method.slice_separable else ""
        return f"streamed in slabs with a halo of {method.halo} slices on each side (--halo){separable}"
    if method.slice_separable:
        return "streamed in slabs of slices where its parameters make it slice-separable, else run whole"
    return "run whole (its slices are coupled)"


def methods_hint(spec: str) -> str:
    """The methods for a file of ``spec``, as the fix of a missing or unknown ``--method``."""
    names = [m.name for m in methods_for(spec)]
    return f"for {spec} files choose one of {', '.join(names)} (`recon methods NAME` tells more)"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def methods_markdown() -> str:
    """The method reference page (Markdown): a table of all methods, then one section per method."""
    from recon.methods import compatible_priors
    from recon.weights import all_cards, describe_card

    cards = all_cards()
    lines = ["# Methods", "",
             "Every method recon can run, as `recon methods` lists them. `recon methods NAME` prints the same",
             "section in the terminal; `recon reconstruct FILE --method '?'` lists the methods for one file.", "",
             "| method | family | specs | what it does |", "|---|---|---|---|"]
    chosen = methods_for()
    lines += [f"| [`{m.name}`](#{m.name}) | {m.family} | {', '.join(map(_short, m.specs))} | {_cell(m.summary)} |"
              for m in chosen]
    for method in chosen:
        lines += ["", f"## {method.name}", "", f"{method.summary}", "",
                  f"Family: {method.family}. Specs: {', '.join(f'`{s}`' for s in method.specs)}.", ""]
        if method.params:
            lines += ["| parameter | type | default | meaning |", "|---|---|---|---|"]
            for param in method.params:
                choices = " \\| ".join(map(str, param.choices or ()))
                kind = param.kind.__name__ + (f" ({choices})" if choices else "")
                lines.append(f"| `{param.name}` | {kind} | `{param.describe_default()}` | {_cell(param.help)} |")
        else:
            lines.append("No parameters.")
        priors = compatible_priors(method)
        if method.prior_capability:
            lines += ["", f"Priors (`--prior`): default `{method.default_prior}`; any prior with "
                          f"`{method.prior_capability}` on {method.prior_dims}D data: "
                          f"{', '.join(f'`{p}`' for p in priors)}."]
        weights = usable_weights(method, priors)
        if weights:
            lines += ["", "Shipped weights it can use:", ""]
            for weight in weights:
                what, trained_on, validation = describe_card(cards[weight])
                lines.append(f"- `{weight}`: {what}; trained on {trained_on}; {validation}.")
    return "\n".join(lines) + "\n"
