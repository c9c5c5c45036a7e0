"""Run configuration: one YAML file, typed and validated sections, ``--set a.b=c`` overrides.

A run file has up to six sections (``cluster``, ``generation``, ``training``, ``evaluation``,
``human_eval``, ``judge``); each is a pydantic model defined next to the code that uses it. Unknown keys and wrong
types are errors that name the file and the dotted key. The resolved config is written beside every output
(:func:`save_resolved`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from hiwar.atomic import write_text
from hiwar.cluster.config import ClusterConfig
from hiwar.errors import ConfigError
from hiwar.evaluation.config import EvaluationConfig
from hiwar.evaluation.human.config import HumanEvalConfig
from hiwar.generation.config import GenerationConfig
from hiwar.judge.config import JudgeRunConfig
from hiwar.section import Section
from hiwar.training.config import TrainingConfig

RESOLVED_NAME = "config.resolved.yaml"


class RunConfig(Section):
    """A whole run: every section has defaults, so an empty file is a valid (local, tiny) run."""

    run_dir: str = Field("runs/default", description="Folder under which every stage writes its outputs.")
    seed: int = Field(0, description="Base seed for every stage that samples.")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    human_eval: HumanEvalConfig = Field(default_factory=HumanEvalConfig)
    judge: JudgeRunConfig = Field(default_factory=JudgeRunConfig)


def _format_error(source: str, err: ValidationError) -> str:
    parts = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            parts.append(f"{key}: unknown key")
        else:
            parts.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
    return f"{source}: " + "; ".join(parts)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"generation.engine=vllm"`` -> (``["generation", "engine"]``, ``"vllm"``); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. generation.engine=vllm")
    value = load_yaml_text(raw, f"--set {text!r}: value") if raw.strip() else ""
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each dotted key in ``data`` (creating sections as needed). Unknown keys fail later, at validation."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: '{part}' is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def _duplicate_key(node: yaml.Node, path: str = "") -> str | None:
    """The first key given twice in one mapping of a composed YAML document, as a message, or None."""
    if isinstance(node, yaml.SequenceNode):
        return next((m for i, item in enumerate(node.value) if (m := _duplicate_key(item, f"{path}[{i}]"))), None)
    if not isinstance(node, yaml.MappingNode):
        return None
    first: dict[str, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue  # '<<' merges may be overridden by design
        dotted = f"{path}.{key_node.value}" if path else key_node.value
        line = key_node.start_mark.line + 1
        if key_node.value in first:
            return f"key '{dotted}' is given twice (lines {first[key_node.value]} and {line}); keep one"
        first[key_node.value] = line
        found = _duplicate_key(value_node, dotted)
        if found:
            return found
    return None


def load_yaml_text(text: str, source: str) -> Any:
    """Parse YAML text (a config file or a ``--set`` value); the one YAML reader of user input.

    Raises:
        ConfigError: one line naming ``source`` and the line of a syntax error, or a key given twice in one
            mapping (YAML would silently keep the last), with both lines.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        duplicate = _duplicate_key(node) if node is not None else None
        if duplicate:
            raise ConfigError(f"{source}: {duplicate}")
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(f"{source}: {where}not valid YAML ({problem})") from err


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file (and line, for syntax errors)."""
    from hiwar.textfiles import read_text

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    data = load_yaml_text(read_text(path, error=ConfigError), str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load ``path`` (or the defaults when None), apply ``--set`` overrides, and validate.

    Raises:
        ConfigError: one line naming the file, the dotted key and the problem.
    """
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, list(overrides))
    source = str(path) if path is not None else "(defaults)"
    if overrides:
        source += " with --set " + " ".join(overrides)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from err


def to_yaml(config: BaseModel) -> str:
    """The config as YAML, every default written out, Arabic kept readable."""
    return yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True, sort_keys=False)


def save_resolved(config: BaseModel, out_dir: str | Path) -> Path:
    """Write the resolved config beside an output, as ``config.resolved.yaml``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESOLVED_NAME
    write_text(path, to_yaml(config))
    return path
