"""Scenarios: TOML files saying which VENs misbehave and how (keys: scenarios/steady.toml)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

BAD_KINDS = ("malformed", "schema", "unknown_id", "wrong_service")


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Flapping:
    share: float = 0.0
    every_s: float = 300.0
    pause_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Churn:
    share: float = 0.0
    every_s: float = 600.0
    down_s: float = 5.0


@dataclass(frozen=True, slots=True)
class Bad:
    share: float = 0.0
    kinds: tuple[str, ...] = BAD_KINDS


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str = "steady"
    description: str = ""
    on_vtn_cancel: str = "reregister"
    flapping: Flapping = Flapping()
    churn: Churn = Churn()
    bad: Bad = Bad()


def builtin_names() -> list[str]:
    folder = resources.files("ven_sim") / "scenarios"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir()
                  if p.name.endswith(".toml"))


def _section(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ScenarioError(f"[{where}] must be a table")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ScenarioError(f"unknown keys in [{where}]: {sorted(unknown)}")
    out = dict(data)
    for key in ("share",):
        if key in out and not 0.0 <= float(out[key]) <= 1.0:
            raise ScenarioError(f"{where}.{key} must be between 0 and 1")
    for key in ("every_s", "pause_s", "down_s"):
        if key in out and float(out[key]) <= 0:
            raise ScenarioError(f"{where}.{key} must be positive")
    if "kinds" in out:
        kinds = tuple(out["kinds"])
        bad = set(kinds) - set(BAD_KINDS)
        if bad or not kinds:
            raise ScenarioError(f"bad.kinds must be some of {list(BAD_KINDS)}")
        out["kinds"] = kinds
    return cls(**out)


def parse_scenario(text: str, default_name: str = "custom") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"invalid TOML: {exc}") from exc
    top = {"name", "description", "on_vtn_cancel", "flapping", "churn", "bad"}
    unknown = set(data) - top
    if unknown:
        raise ScenarioError(f"unknown keys: {sorted(unknown)}")
    on_cancel = data.get("on_vtn_cancel", "reregister")
    if on_cancel not in ("reregister", "stop"):
        raise ScenarioError('on_vtn_cancel must be "reregister" or "stop"')
    return Scenario(
        name=str(data.get("name", default_name)),
        description=str(data.get("description", "")),
        on_vtn_cancel=on_cancel,
        flapping=_section(Flapping, data.get("flapping", {}), "flapping"),
        churn=_section(Churn, data.get("churn", {}), "churn"),
        bad=_section(Bad, data.get("bad", {}), "bad"),
    )


def load_scenario(name_or_file: str) -> Scenario:
    """A built-in scenario by name, or a TOML file by path."""
    path = Path(name_or_file)
    if path.suffix == ".toml" or path.exists():
        try:
            return parse_scenario(path.read_text(), path.stem)
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario {name_or_file}: {exc}") from exc
    resource = resources.files("ven_sim") / "scenarios" / f"{name_or_file}.toml"
    if not resource.is_file():
        raise ScenarioError(
            f"no scenario {name_or_file!r}: built-ins are {', '.join(builtin_names())}, "
            "or give a .toml file"
        )
    return parse_scenario(resource.read_text(), name_or_file)
