"""An actor pool's resources: how many actors, each with what CPUs, GPUs and accelerator, fed how many rows at a
time. The one block that generation's engines (and the judge's), RAVEN's reply engine and evaluation's actor pools
share, and the one place that turns it into Ray arguments. Kept on a low floor: it imports no stage."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import AliasChoices, Field, model_validator

from hiwar.section import Section

log = logging.getLogger(__name__)

MAX_BLOCKS = 2000  # input blocks of one pool's dataset, at most


class ActorResources(Section):
    """An actor pool. The older engine names (``replicas``, ``num_cpus_per_replica``, ``num_gpus_per_replica``)
    are accepted for the same keys."""

    actors: int = Field(
        1,
        ge=1,
        validation_alias=AliasChoices("actors", "replicas"),
        description="Actors in the pool (engine replicas); each loads the model once. Also read as 'replicas'.",
    )
    batch_size: int = Field(16, ge=1, description="Rows per batch sent to one actor.")
    num_cpus: float = Field(
        1.0,
        gt=0,
        validation_alias=AliasChoices("num_cpus", "num_cpus_per_replica"),
        description="CPUs per actor (also its torch thread count on CPU). Also read as 'num_cpus_per_replica'.",
    )
    num_gpus: float = Field(
        0.0,
        ge=0,
        validation_alias=AliasChoices("num_gpus", "num_gpus_per_replica"),
        description="GPUs per actor; 0 runs on CPU. Also read as 'num_gpus_per_replica'.",
    )
    accelerator_type: str | None = Field(
        None, description="Ray accelerator type of the GPUs, e.g. 'A100' or 'H100'; null: any."
    )
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="torch threads per actor on CPU (transformers engines and scorers); null: its num_cpus. More "
        "than num_cpus lets an actor use cores that Ray keeps for lighter tasks beside it.",
    )

    def threads(self) -> int:
        """The actor's torch threads on CPU: ``torch_threads``, else its whole CPUs (at least one)."""
        return self.torch_threads or max(1, int(self.num_cpus))

    @model_validator(mode="before")
    @classmethod
    def _one_name_each(cls, data: Any) -> Any:
        # Both names of one key would otherwise read as "unknown key" for the second.
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                given = [n for n in getattr(field.validation_alias, "choices", ()) if n in data]
                if len(given) > 1:
                    raise ValueError(f"{' and '.join(given)} are one key ({name}); give one")
        return data

    def blocks(self, rows: int) -> int:
        """How many blocks to cut ``rows`` input rows into for this pool: one per batch (``batch_size`` rows), so
        the first results come back after one batch rather than after a whole block of several, and at least four
        per actor, so no actor idles while another finishes a long last block (rows sorted by length make the
        blocks' costs uneven); never more blocks than rows, nor than 2,000 (Ray's scheduling cost per block).

        Measured with the perplexity benchmark (2 actors, 3,000 conversations, batches of 64): 8 blocks, as before,
        returned the first rows after a block of 375 conversations; see ``docs/evaluation.md``, "Speed"."""
        per_batch = -(-rows // max(self.batch_size, 1))
        return max(1, min(rows, MAX_BLOCKS, max(per_batch, 4 * self.actors)))

    def gpus_per_actor(self) -> float:
        """GPUs one actor wants (an engine may need more than ``num_gpus``, e.g. vLLM's tensor parallelism)."""
        return self.num_gpus

    def ray_args(self, warm: bool = True) -> dict[str, Any]:
        """The pool's ``map_batches`` arguments: ``compute`` (a fixed pool of ``actors``), ``batch_size``,
        ``num_cpus``, ``num_gpus`` and, with GPUs, ``accelerator_type``. Ray Data LLM's processors take the same
        but the pool size as ``concurrency`` (``actors``).

        ``warm``: a pool of transformers model actors, which take the warm workers waiting for them, if any
        (:mod:`hiwar.cluster.warm_workers`: the actors then carry their ``runtime_env``).

        GPUs are asked for only when the cluster has that many; otherwise the actors run on CPU, since an actor
        that asks for a GPU the cluster lacks would wait forever. That is said in a warning, unless no GPU was
        asked for (``num_gpus``) on a cluster without any (an engine's own need: vLLM's CPU build).
        """
        import ray
        import ray.data

        want = self.gpus_per_actor()
        have = ray.cluster_resources().get("GPU", 0)
        gpus = want if want > 0 and have >= want else 0
        if want > 0 and not gpus and (self.num_gpus > 0 or have > 0):
            log.warning("asked for %g GPU(s) per actor but the cluster has %g; running on CPU", want, have)
        args: dict[str, Any] = {
            "compute": ray.data.ActorPoolStrategy(size=self.actors),
            "batch_size": self.batch_size,
            "num_cpus": self.num_cpus,
            "num_gpus": gpus,
        }
        if gpus and self.accelerator_type:
            args["accelerator_type"] = self.accelerator_type
        if warm:
            args.update(self.warm_args())
        return args

    def warm_args(self) -> dict[str, Any]:
        """The pool's ``runtime_env`` when warm workers wait for its actors (:mod:`hiwar.cluster.warm_workers`),
        else nothing: what ``ray_args`` adds with ``warm``."""
        from hiwar.cluster import warm_workers

        env = warm_workers.take(self.actors)
        return {} if env is None else {"runtime_env": env}


# The keys of the block: they say how fast and on what hardware work runs, never what it writes.
RESOURCE_FIELDS = frozenset(ActorResources.model_fields)
