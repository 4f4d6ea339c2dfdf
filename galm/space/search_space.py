"""The GALM search space (Table 1 of the paper): a shared trunk and per-attribute head decisions.

The space is a list of labelled categorical decisions; a controller sees only that list
(names and numbers of choices). An :class:`Architecture` is the immutable value one head
takes: it round-trips through JSON and through a short stable string for logs and tables.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from galm.config.schema import SpaceConfig

CONV4_SKIP_SOURCES = ("conv1", "conv2")
CONV5_SKIP_SOURCES = ("conv1", "conv2", "conv3")
FC3_INPUTS = ("fc1", "fc2")


@dataclass(frozen=True)
class Decision:
    """One categorical choice the controller makes for a head."""

    name: str
    choices: tuple[Any, ...]

    @property
    def size(self) -> int:
        return len(self.choices)


@dataclass(frozen=True)
class Architecture:
    """The head of one attribute: Conv-4, Conv-5 (skips and kernels), Fc-1, Fc-2 widths, Fc-3 input."""

    conv4_skips: tuple[str, ...] = field(default=())
    conv4_kernel: int = 3
    conv5_skips: tuple[str, ...] = field(default=())
    conv5_kernel: int = 3
    fc1_width: int = 64
    fc2_width: int = 64
    fc3_input: str = "fc1"

    def __post_init__(self) -> None:
        # Normalise skip sets to a canonical, sorted tuple so equal heads compare equal.
        object.__setattr__(self, "conv4_skips", _canonical_skips(self.conv4_skips, CONV4_SKIP_SOURCES, "conv4_skips"))
        object.__setattr__(self, "conv5_skips", _canonical_skips(self.conv5_skips, CONV5_SKIP_SOURCES, "conv5_skips"))
        if self.fc3_input not in FC3_INPUTS:
            raise ValueError(f"fc3_input must be one of {FC3_INPUTS}, got {self.fc3_input!r}")

    @property
    def uses_fc2(self) -> bool:
        return self.fc3_input == "fc2"

    def to_json(self) -> dict[str, Any]:
        return {
            "conv4_skips": list(self.conv4_skips),
            "conv4_kernel": self.conv4_kernel,
            "conv5_skips": list(self.conv5_skips),
            "conv5_kernel": self.conv5_kernel,
            "fc1_width": self.fc1_width,
            "fc2_width": self.fc2_width,
            "fc3_input": self.fc3_input,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Architecture":
        expected = set(cls.__dataclass_fields__)
        if not isinstance(data, dict):
            raise ValueError(f"an architecture must be a JSON object, got {type(data).__name__}")
        unknown, missing = set(data) - expected, expected - set(data)
        if unknown or missing:
            raise ValueError(
                f"architecture fields: unknown {sorted(unknown)}, missing {sorted(missing)}; expected {sorted(expected)}"
            )
        return cls(
            conv4_skips=tuple(data["conv4_skips"]),
            conv4_kernel=int(data["conv4_kernel"]),
            conv5_skips=tuple(data["conv5_skips"]),
            conv5_kernel=int(data["conv5_kernel"]),
            fc1_width=int(data["fc1_width"]),
            fc2_width=int(data["fc2_width"]),
            fc3_input=str(data["fc3_input"]),
        )

    def short(self) -> str:
        """Stable short form, e.g. ``c4k3s12-c5k5s3-f128-f64-o1``."""
        s4 = "".join(src[-1] for src in self.conv4_skips) or "0"
        s5 = "".join(src[-1] for src in self.conv5_skips) or "0"
        return (
            f"c4k{self.conv4_kernel}s{s4}-c5k{self.conv5_kernel}s{s5}"
            f"-f{self.fc1_width}-f{self.fc2_width}-o{self.fc3_input[-1]}"
        )

    def __str__(self) -> str:
        return self.short()

    @classmethod
    def parse(cls, text: str) -> "Architecture":
        """Inverse of :meth:`short`."""
        match = _SHORT_FORM.fullmatch(text.strip())
        if not match:
            raise ValueError(f"not an architecture string: {text!r} (expected e.g. 'c4k3s12-c5k5s3-f128-f64-o1')")
        k4, s4, k5, s5, f1, f2, out = match.groups()

        def skips(digits: str) -> tuple[str, ...]:
            return () if digits == "0" else tuple(f"conv{d}" for d in digits)

        return cls(skips(s4), int(k4), skips(s5), int(k5), int(f1), int(f2), f"fc{out}")


_SHORT_FORM = re.compile(r"c4k(\d+)s(0|[12]+)-c5k(\d+)s(0|[123]+)-f(\d+)-f(\d+)-o([12])")


def _canonical_skips(skips: Sequence[str], allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    if isinstance(skips, str):
        raise ValueError(f"{name} must be a list of layer names, got the string {skips!r}")
    unknown = [s for s in skips if s not in allowed]
    if unknown:
        raise ValueError(f"{name} may only contain {allowed}, got {list(skips)}")
    return tuple(s for s in allowed if s in set(skips))


class SearchSpace:
    """The per-attribute decisions of Table 1 under a :class:`SpaceConfig`.

    Actions are integer indices, one per decision, in the order of :attr:`decisions`.
    """

    def __init__(self, config: SpaceConfig | None = None) -> None:
        self.config = config or SpaceConfig()
        c = self.config
        on_off = (False, True)
        self.decisions: tuple[Decision, ...] = (
            Decision("conv4_skip_conv1", on_off),
            Decision("conv4_skip_conv2", on_off),
            Decision("conv4_kernel", tuple(c.conv4_kernels)),
            Decision("conv5_skip_conv1", on_off),
            Decision("conv5_skip_conv2", on_off),
            Decision("conv5_skip_conv3", on_off),
            Decision("conv5_kernel", tuple(c.conv5_kernels)),
            Decision("fc1_width", tuple(c.fc_widths)),
            Decision("fc2_width", tuple(c.fc_widths)),
            Decision("fc3_input", FC3_INPUTS),
        )

    @property
    def decision_sizes(self) -> tuple[int, ...]:
        return tuple(d.size for d in self.decisions)

    def __len__(self) -> int:
        total = 1
        for d in self.decisions:
            total *= d.size
        return total

    def decode(self, actions: Sequence[int]) -> Architecture:
        """Architecture from one action index per decision."""
        if len(actions) != len(self.decisions):
            raise ValueError(f"expected {len(self.decisions)} actions, got {len(actions)}")
        values = {}
        for decision, index in zip(self.decisions, actions):
            index = int(index)
            if not 0 <= index < decision.size:
                raise ValueError(f"action {index} out of range for {decision.name} ({decision.size} choices)")
            values[decision.name] = decision.choices[index]
        return Architecture(
            conv4_skips=tuple(s for s in CONV4_SKIP_SOURCES if values[f"conv4_skip_{s}"]),
            conv4_kernel=values["conv4_kernel"],
            conv5_skips=tuple(s for s in CONV5_SKIP_SOURCES if values[f"conv5_skip_{s}"]),
            conv5_kernel=values["conv5_kernel"],
            fc1_width=values["fc1_width"],
            fc2_width=values["fc2_width"],
            fc3_input=values["fc3_input"],
        )

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        """Action indices of an architecture; raises if it lies outside this space."""
        values = {
            "conv4_skip_conv1": "conv1" in arch.conv4_skips,
            "conv4_skip_conv2": "conv2" in arch.conv4_skips,
            "conv4_kernel": arch.conv4_kernel,
            "conv5_skip_conv1": "conv1" in arch.conv5_skips,
            "conv5_skip_conv2": "conv2" in arch.conv5_skips,
            "conv5_skip_conv3": "conv3" in arch.conv5_skips,
            "conv5_kernel": arch.conv5_kernel,
            "fc1_width": arch.fc1_width,
            "fc2_width": arch.fc2_width,
            "fc3_input": arch.fc3_input,
        }
        indices = []
        for decision in self.decisions:
            if values[decision.name] not in decision.choices:
                raise ValueError(
                    f"{arch.short()}: {decision.name}={values[decision.name]!r} is not one of {decision.choices}"
                )
            indices.append(decision.choices.index(values[decision.name]))
        return tuple(indices)

    def contains(self, arch: Architecture) -> bool:
        try:
            self.encode(arch)
        except ValueError:
            return False
        return True

    def enumerate(self) -> Iterator[Architecture]:
        """Every architecture of the space, in a fixed order."""
        for actions in itertools.product(*(range(d.size) for d in self.decisions)):
            yield self.decode(actions)

    def sample(self, rng: random.Random) -> Architecture:
        """One architecture drawn uniformly."""
        return self.decode([rng.randrange(d.size) for d in self.decisions])

    def default(self) -> Architecture:
        """The first choice of every decision: no skips, smallest kernels and widths, Fc-3 reads Fc-1."""
        return self.decode([0] * len(self.decisions))

    def largest(self) -> Architecture:
        """The last choice of every decision: every skip, the largest kernels and widths, Fc-3 reads Fc-2."""
        return self.decode([d.size - 1 for d in self.decisions])

    def named(self, text: str) -> Architecture:
        """``default``, ``largest`` or a short form such as ``c4k3s0-c5k3s0-f256-f128-o2``, which must
        lie in this space."""
        arch = {"default": self.default, "largest": self.largest}.get(text, lambda: Architecture.parse(text))()
        self.encode(arch)
        return arch
