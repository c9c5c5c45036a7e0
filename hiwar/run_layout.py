"""Where every file of a run lives, derived from the config in this one place.

    <dataset>                  generation.output_dir, else <run_dir>/dataset (inside it: hiwar/dataset_layout.py)
    <model>                    training.models[i].output_dir, else <run_dir>/models/<name> (done: hiwar_model.json)
    <train_storage>/<name>/    Ray Train's run of one model (checkpoints): training.storage_path, else <run_dir>/train
    <evaluation>               evaluation.output_dir, else <run_dir>/evaluation
    <evaluation>/models/<name>/{perplexity,raven}/   one model's metrics; raven/replies.parquet feeds human-eval
    <human_eval>               human_eval.output_dir, else <run_dir>/human_eval (the raters' sheets)
    <judge>                    judge.output_dir, else <run_dir>/judge
    <run_dir>/manifests/<stage>.json   the pipeline's stage manifests (completion markers)
    <run_dir>/logs/pipeline.log, <run_dir>/REPORT.md

``hiwar generate``, ``train``, ``evaluate``, ``human-eval export``, the pipeline and the run report all ask this module,
so separate commands on one config meet in the same folders. It imports nothing of hiwar (not even the config
module, which imports every stage's section): it reads the attributes of the ``RunConfig`` it is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODEL_MARKER = "hiwar_model.json"  # a model folder's manifest, written last: its completion marker
TRAIN_RUN_MARKER = "hiwar_run.json"  # what a Ray Train run's checkpoints were made with


class RunLayout:
    """The paths of one run. Each ``*_key`` names the config key (or ``run_dir``) that decides a path, for messages."""

    def __init__(self, config: Any) -> None:
        """``config``: a :class:`hiwar.config.RunConfig`."""
        self.config = config
        self.run_dir = Path(config.run_dir)
        self.dataset = Path(config.generation.output_dir or self.run_dir / "dataset")
        self.dataset_key = "generation.output_dir" if config.generation.output_dir else "run_dir"
        # Ray Train wants an absolute storage path.
        self.train_storage = Path(config.training.storage_path or self.run_dir / "train").resolve()
        self.train_storage_key = "training.storage_path" if config.training.storage_path else "run_dir"
        self.evaluation = Path(config.evaluation.output_dir or self.run_dir / "evaluation")
        self.evaluation_key = "evaluation.output_dir" if config.evaluation.output_dir else "run_dir"
        self.human_eval = Path(config.human_eval.output_dir or self.run_dir / "human_eval")
        self.human_eval_key = "human_eval.output_dir" if config.human_eval.output_dir else "run_dir"
        self.judge = Path(config.judge.output_dir or self.run_dir / "judge")
        self.judge_key = "judge.output_dir" if config.judge.output_dir else "run_dir"
        self.manifests = self.run_dir / "manifests"
        self.logs = self.run_dir / "logs"
        self.pipeline_log = self.logs / "pipeline.log"
        self.report = self.run_dir / "REPORT.md"

    @property
    def eval_dataset(self) -> Path:
        """What ``hiwar evaluate`` scores: ``evaluation.dataset``, else the run's dataset."""
        return Path(self.config.evaluation.dataset) if self.config.evaluation.dataset else self.dataset

    def model_dir(self, spec: Any) -> Path:
        """A fine-tuned model's folder (``spec``: a ``training.models`` entry)."""
        return Path(spec.output_dir) if spec.output_dir else self.run_dir / "models" / spec.name

    def model_marker(self, spec: Any) -> Path:
        """The model folder's manifest: it exists once the model is written, and says what made it."""
        return self.model_dir(spec) / MODEL_MARKER

    def train_run(self, spec: Any) -> Path:
        """Ray Train's folder for one model (checkpoints, metrics log); a rerun resumes from it."""
        return self.train_storage / spec.name

    def train_run_marker(self, spec: Any) -> Path:
        """What the checkpoints in :meth:`train_run` were made with."""
        return self.train_run(spec) / TRAIN_RUN_MARKER

    def evaluation_model(self, name: str) -> Path:
        """One evaluated model's metric folders (``perplexity/``, ``raven/``) under the evaluation folder."""
        return self.evaluation / "models" / name

    def replies_files(self) -> list[Path]:
        """Every evaluated model's RAVEN replies (each a human-eval input), in name order."""
        return sorted(self.evaluation.glob("models/*/raven/replies.parquet"))

    @property
    def replies_for_rating(self) -> Path:
        """The pipeline's merge of :meth:`replies_files` that the raters' sheets are sampled from."""
        return self.evaluation / "replies_for_rating.parquet"

    def manifest(self, stage: str) -> Path:
        """The pipeline manifest of ``stage`` (its completion marker)."""
        return self.manifests / f"{stage}.json"

    def model_places(self, specs: list[Any]) -> list[tuple[str, Path]]:
        """Each model's folder, named by the key that decides it."""
        models = list(self.config.training.models)
        return [
            (f"training.models[{models.index(s)}].output_dir" if s.output_dir else "run_dir", self.model_dir(s))
            for s in specs
        ]

    def output_places(self, stage: str, models: list[Any] | None = None) -> list[tuple[str, Path]]:
        """Every folder ``stage`` writes, named by the key that decides it (checked before any work starts).

        Args:
            stage: a pipeline stage name (generate, train, evaluate, human-eval, judge, report).
            models: for ``train``, the ``training.models`` entries to train (default: all).
        """
        if stage == "generate":
            return [(self.dataset_key, self.dataset)]
        if stage == "train":
            specs = list(self.config.training.models) if models is None else models
            return self.model_places(specs) + [(self.train_storage_key, self.train_storage)] if specs else []
        if stage == "evaluate":
            return [(self.evaluation_key, self.evaluation)]
        if stage == "human-eval":
            return [(self.human_eval_key, self.human_eval)]
        if stage == "judge":
            return [(self.judge_key, self.judge)] if self.config.judge.enabled else []
        if stage == "report":
            return [("run_dir", self.run_dir)]
        raise ValueError(f"unknown stage {stage!r}")

    def stage_outputs(self, stage: str) -> list[Path]:
        """What redoing ``stage`` deletes first: its folders, and for ``train`` the Ray Train runs too (a rerun
        would otherwise resume at their end)."""
        if stage == "train":
            specs = self.config.training.models
            return [self.model_dir(s) for s in specs] + [self.train_run(s) for s in specs]
        if stage == "judge":
            return [self.judge]
        if stage == "report":
            return [self.report]
        return [path for _, path in self.output_places(stage)]
