"""Method variants by name: a preset, modifiers and options in one short string.

``evsim compare --methods`` and :func:`evsim.compare_methods` take a method as
text in this small grammar::

    variant  := preset ("+" modifier)* ["(" option "=" value ("," option "=" value)* ")"]
    variants := variant ("," variant)*          (commas inside parentheses belong to a variant)

* ``preset``: a key of :data:`evsim.options.METHODS` (``percentile``, ``spicalib``, ...);
* ``modifier``: a named change of options (:data:`MODIFIERS`): ``+opi`` starts every
  neuron at θ/2 (``initial_potential=0.5``), the part of OPI that needs no training;
* ``option=value``: any field of :class:`~evsim.options.ConversionOptions`
  (``burst=2``, ``percentile=99.5``, ``max_pool=gate``), or ``p`` for the percentile
  as a fraction, as SpiCalib's and BrainCog's code write it (``p=0.995`` is
  ``percentile=99.5``).

The variant's label is its text as written: ``spicalib(p=0.995)``. Mistakes are
errors that name the closest valid word (``percentil`` → ``percentile``) and list
what is allowed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from types import MappingProxyType

from .errors import EvsimValueError
from .options import METHODS, ConversionOptions, OptionError, preset

#: Modifiers (``+name``): the options each one sets.
MODIFIERS = MappingProxyType({
    "opi": MappingProxyType({"initial_potential": 0.5, "initial_potential_unit": "threshold"}),
    "channelwise": MappingProxyType({"channelwise": True}),
    "gate": MappingProxyType({"max_pool": "gate"}),
    "temporal": MappingProxyType({"time_scheme": "temporal"}),
})

#: Option names that are not fields of ConversionOptions: ``alias: (field, what it means)``.
ALIASES = MappingProxyType({"p": ("percentile", "the percentile as a fraction in (0, 1]")})


class VariantError(EvsimValueError):
    """A method variant's text that cannot be read; the message says what would be valid."""


@dataclass(frozen=True)
class Variant:
    """A method variant: ``label`` (the text as written), the ``preset`` it starts from and the
    ``options`` it changes (``{ConversionOptions field: value}``, modifiers first, then the
    parenthesised options in order)."""

    label: str
    preset: str
    options: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self):
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        try:
            self.conversion_options()
        except OptionError as err:
            raise VariantError(f"method {self.label!r}: {err}") from None

    def conversion_options(self) -> ConversionOptions:
        """The preset's options with this variant's changes."""
        return preset(self.preset).replace(**self.options)


def _closest(word: str, choices, prefix: str) -> str:
    """' (did you mean 'X'?)' for a near miss of ``word`` among ``choices`` ('' if none);
    ``prefix`` goes before the suggestion (``+`` for a modifier)."""
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{prefix}{near[0]}'?)" if near else ""


def _value(text: str, name: str, label: str):
    """``text`` as the type the option ``name`` takes (from its field's metadata)."""
    meta = {f.name: f.metadata for f in fields(ConversionOptions)}[name]
    if text.lower() == "none":
        return None
    kind = meta.get("type")
    if kind is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise VariantError(f"method {label!r}: {name} takes true or false, got {text!r}")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise VariantError(f"method {label!r}: {name} takes {noun}, got {text!r}") from None
    if "choices" in meta and text not in meta["choices"]:
        raise VariantError(f"method {label!r}: {name} must be one of "
                           f"{', '.join(meta['choices'])}; got {text!r}"
                           + _closest(text, meta["choices"], ""))
    return text


def _option(item: str, label: str) -> tuple[str, object]:
    """One ``option=value`` of a variant's parentheses, as a ConversionOptions field and value."""
    key, sep, text = (part.strip() for part in item.partition("="))
    names = [f.name for f in fields(ConversionOptions)]
    if not sep or not key or not text:
        raise VariantError(f"method {label!r}: expected option=value inside the parentheses, "
                           f"got {item.strip()!r}")
    if key in ALIASES:
        target = ALIASES[key][0]
        value = _value(text, target, label)
        if not (isinstance(value, float) and 0 < value <= 1):
            raise VariantError(f"method {label!r}: {key} is {ALIASES[key][1]}, got {text!r}; "
                               f"for per cent write {target}={text}")
        return target, round(100 * value, 10)
    if key not in names:
        raise VariantError(f"method {label!r}: unknown option {key!r}" + _closest(
            key, names + list(ALIASES), "") + f". Options are the fields of ConversionOptions: "
            f"{', '.join(names)} (and p, the percentile as a fraction)")
    return key, _value(text, key, label)


def parse_variant(text: str) -> Variant:
    """The :class:`Variant` that ``text`` names (``"percentile+opi"``, ``"spicalib(p=0.995)"``)."""
    label = text.strip()
    head, paren, tail = label.partition("(")
    if paren and not tail.endswith(")"):
        raise VariantError(f"method {label!r}: the options in parentheses must end the name, "
                           "as in spicalib(p=0.995, burst=3)")
    name, *modifiers = (part.strip() for part in head.split("+"))
    if name not in METHODS:
        raise VariantError(f"method {label!r}: unknown preset {name!r}"
                           + _closest(name, list(METHODS), "") + ". Presets are "
                           + ", ".join(METHODS) + (" (modifiers follow a preset: percentile+"
                                                   f"{name})" if name in MODIFIERS else ""))
    options: dict = {}
    for modifier in modifiers:
        if modifier not in MODIFIERS:
            raise VariantError(f"method {label!r}: unknown modifier '+{modifier}'"
                               + _closest(modifier, list(MODIFIERS), "+") + ". Modifiers are "
                               + "; ".join(f"+{m} ({describe_modifier(m)})" for m in MODIFIERS))
        options.update(MODIFIERS[modifier])
    if paren:
        items = [item for item in tail[:-1].split(",") if item.strip()]
        options.update(_option(item, label) for item in items)
    return Variant(label, name, options)


def describe_modifier(name: str) -> str:
    """The options modifier ``name`` sets, as ``key=value, ...``."""
    return ", ".join(f"{key}={value}" for key, value in MODIFIERS[name].items())


def split_variants(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses, each part stripped, empty ones left out."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise VariantError(f"unbalanced ')' in {text!r}")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise VariantError(f"unbalanced '(' in {text!r}")
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


__all__ = ["MODIFIERS", "ALIASES", "Variant", "VariantError", "parse_variant",
           "split_variants", "describe_modifier"]
