"""The ``hiwar`` command line. It only parses arguments and calls importable ``run_*`` functions.

Heavy packages (torch, ray, transformers, vllm) are imported inside the commands, so ``hiwar --help`` is instant.
User errors (:class:`hiwar.errors.HiwarError`) print one line and exit with status 2.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any

import click

from hiwar import __version__
from hiwar.errors import HiwarError


class UserError(click.ClickException):
    """A HiwarError as click shows it: ``Error: <one line>``, exit status 2 (1 for a failed job)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class HiwarGroup(click.Group):
    """A click group that turns HiwarError from any subcommand into a one-line error."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HiwarError as err:
            raise UserError(str(err), err.exit_code) from err


def config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--config/-c`` and repeatable ``--set KEY=VALUE`` and pass a loaded ``config`` to the command."""

    @click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Run config YAML (see configs/). Default: built-in local defaults.",
    )
    @click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a config value, e.g. --set generation.engine=vllm (repeatable).",
    )
    @functools.wraps(func)
    def wrapper(config_path: str | None, overrides: tuple[str, ...], **kwargs: Any) -> Any:
        from hiwar.config import load_config

        return func(config=load_config(config_path, overrides), **kwargs)

    return wrapper


PROGRESS_LOG_INTERVAL = "RAY_DATA_NON_TTY_PROGRESS_LOG_INTERVAL"


@click.group(cls=HiwarGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hiwar")
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def cli(log_level: str) -> None:
    """hiwar (حوار): build Arabic multi-turn dialogue models end to end on Ray.

    Generate conversations with vLLM on Ray Data, fine-tune with Ray Train, evaluate with perplexity, bits per
    byte and RAVEN, and run the whole blueprint locally or as Ray jobs on a cluster.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Without a terminal (Ray job logs, CI, nohup) Ray Data logs every dataset's progress every 10 s, several lines
    # each: most of a long job's log. Every 60 s unless the user chose (read when ray.data is first imported).
    os.environ.setdefault(PROGRESS_LOG_INTERVAL, "60")


@cli.command()
@click.option("--address", default=None, help="Ray address to check (default: RAY_ADDRESS, else 'auto').")
@click.option("--no-ray", is_flag=True, help="Skip the Ray reachability check.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds to wait for the Ray address to answer (default: cluster.connect_timeout_s's default, 30).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="ID_OR_PATH",
    help="Check that this model can run (repeatable): config, architecture on the engine, tokenizer, weights.",
)
@click.option(
    "--engine",
    type=click.Choice(["transformers", "vllm", "openai", "all"]),
    default=None,
    help="Engine to check models on (default: transformers for --model, each model's own with -c; "
    "all: transformers and vllm).",
)
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Check every model this run config names (generator, models to train and to evaluate).",
)
def doctor(
    address: str | None,
    no_ray: bool,
    timeout_s: float | None,
    models: tuple[str, ...],
    engine: str | None,
    config_path: str | None,
) -> None:
    """Show versions, CPUs/GPUs, Ray reachability and which engines can run here; with --model or -c, whether
    each model can run on each engine (before any cluster starts)."""
    if models or config_path:
        from hiwar.doctor import run_model_doctor

        text, problem = run_model_doctor(models, engine, config_path)
        click.echo(text)
        if problem:
            raise HiwarError(problem)
        return
    from hiwar.doctor import format_report, run_doctor

    click.echo(format_report(run_doctor(address=address, check_ray=not no_ray, timeout_s=timeout_s)))


@cli.command("config")
@config_options
def show_config(config: Any) -> None:
    """Print the resolved config (file, then --set overrides, every default filled in)."""
    from hiwar.config import to_yaml

    click.echo(to_yaml(config), nl=False)


_JOB_ADDRESS_HELP = (
    "Ray job server (dashboard) URL. Default: RAY_ADDRESS if it is http(s)://, else http://127.0.0.1:8265."
)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--address", default=None, help=_JOB_ADDRESS_HELP)
@click.option(
    "--working-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Project folder uploaded with the job (default: '.'; not with --image).",
)
@click.option("--pip", "pip_packages", multiple=True, metavar="REQ", help="pip requirement for the job (repeatable).")
@click.option("--requirements", type=click.Path(dir_okay=False), default=None, help="pip requirements file.")
@click.option("--image", default=None, help="Prebuilt image holding hiwar (Ray image_uri; needs podman on the nodes).")
@click.option(
    "--env-var",
    "env_names",
    multiple=True,
    metavar="NAME",
    help="Send this variable's local value (repeatable). Secret-looking names (*KEY*, *TOKEN*, "
    "*SECRET*, *PASSWORD*) are never sent: the job requires them to be set on the cluster.",
)
@click.option("--exclude", "excludes", multiple=True, metavar="PATTERN", help="Extra upload exclude (repeatable).")
@click.option("--python", "python_exe", default="python", show_default=True, help="Interpreter on the cluster.")
@click.option("--follow", is_flag=True, help="Stream the logs until the job ends; exit 0 only if it SUCCEEDED.")
@click.option("--no-wait", is_flag=True, help="Return right after submitting.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def submit(
    ctx: click.Context,
    command: tuple[str, ...],
    address: str | None,
    working_dir: str | None,
    pip_packages: tuple[str, ...],
    requirements: str | None,
    image: str | None,
    env_names: tuple[str, ...],
    excludes: tuple[str, ...],
    python_exe: str,
    follow: bool,
    no_wait: bool,
) -> None:
    """Submit a hiwar command as a Ray job: hiwar submit [OPTIONS] -- COMMAND [ARGS]...

    Example: hiwar submit --follow -- generate -c configs/paper-gpu.yaml
    """
    from hiwar.cluster.jobs import run_submit

    result = run_submit(
        command,
        parser=cli,
        address=address,
        working_dir=working_dir,
        pip=pip_packages,
        requirements=requirements,
        image=image,
        env_names=env_names,
        excludes=excludes,
        python=python_exe,
        follow=follow,
        no_wait=no_wait,
        echo=lambda s: click.echo(s, nl=False),
    )
    ctx.exit(result.exit_code)


@cli.group("jobs")
def jobs_group() -> None:
    """List, inspect, tail and stop hiwar's Ray jobs on a cluster."""


@jobs_group.command("list")
@click.option("--address", default=None, help=_JOB_ADDRESS_HELP)
def jobs_list(address: str | None) -> None:
    """List the cluster's jobs, newest first."""
    from hiwar.cluster.jobs import format_jobs, run_jobs_list

    click.echo(format_jobs(run_jobs_list(address)), nl=False)


@jobs_group.command("status")
@click.argument("job_id")
@click.option("--address", default=None, help=_JOB_ADDRESS_HELP)
def jobs_status(job_id: str, address: str | None) -> None:
    """Show a job's status, message, entrypoint and times."""
    from hiwar.cluster.jobs import format_job, run_jobs_status

    click.echo(format_job(run_jobs_status(job_id, address)), nl=False)


@jobs_group.command("logs")
@click.argument("job_id")
@click.option("--address", default=None, help=_JOB_ADDRESS_HELP)
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the job ends; exit 0 only if it SUCCEEDED.")
@click.pass_context
def jobs_logs(ctx: click.Context, job_id: str, address: str | None, follow: bool) -> None:
    """Print a job's logs."""
    from hiwar.cluster.jobs import run_jobs_logs

    result = run_jobs_logs(job_id, address, follow=follow, echo=lambda s: click.echo(s, nl=False))
    if follow:
        ctx.exit(0 if result == "SUCCEEDED" else 1)


@jobs_group.command("stop")
@click.argument("job_id")
@click.option("--address", default=None, help=_JOB_ADDRESS_HELP)
def jobs_stop(job_id: str, address: str | None) -> None:
    """Stop a job and wait (up to a minute) until it has ended."""
    from hiwar.cluster.jobs import run_jobs_stop

    click.echo(f"{job_id}: {run_jobs_stop(job_id, address)}")


@cli.group("human-eval")
def human_eval_group() -> None:
    """Blind human rating: export sheets for two (or more) raters, then analyse their agreement and scores."""


@human_eval_group.command("export")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(),  # checked by hiwar.outdirs, before any work
    default=None,
    help="Export folder (default: human_eval.output_dir, else <run_dir>/human_eval).",
)
@click.option(
    "--model",
    "model_name",
    default=None,
    help="Model name for conversation records (default: each record's generator.model).",
)
@config_options
def human_eval_export(config: Any, inputs: tuple[str, ...], out_dir: str | None, model_name: str | None) -> None:
    """Sample replies from INPUTS (dataset folders, conversation files, replies files) into blind sheets."""
    from hiwar.evaluation.human.export import run_export, summary_text

    click.echo(summary_text(run_export(config, list(inputs), out_dir=out_dir, model_name=model_name)))


@human_eval_group.command("analyze")
@click.argument("sheets_dir", type=click.Path(file_okay=False))
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The export's key.json (default: in SHEETS_DIR or its parent).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(),  # checked by hiwar.outdirs, before any work
    default=None,
    help="Report folder (default: report/ beside the key).",
)
@click.option("--allow-partial", is_flag=True, help="Analyse the valid scores even when some have problems.")
@click.option(
    "--judge",
    "judge_path",
    type=click.Path(),
    default=None,
    help="Output folder of `hiwar judge` run on this export: add the judge's agreement with the raters.",
)
@config_options
def human_eval_analyze(
    config: Any,
    sheets_dir: str,
    key_path: str | None,
    out_dir: str | None,
    allow_partial: bool,
    judge_path: str | None,
) -> None:
    """Validate the filled sheets in SHEETS_DIR, then report agreement (kappa, rho, alpha) and mean scores."""
    from hiwar.evaluation.human.analyze import run_analyze

    out = run_analyze(config, sheets_dir, allow_partial, key_path=key_path, out_dir=out_dir, judge_path=judge_path)
    click.echo(f"report: {out / 'report.md'}")


@cli.command()
@click.option(
    "--model",
    "-m",
    "models",
    multiple=True,
    metavar="ID_OR_PATH",
    help="Model to evaluate instead of evaluation.models (repeatable).",
)
@click.option(
    "--dataset",
    default=None,
    help="Dataset folder or Parquet/JSONL file (default: evaluation.dataset, else the run's dataset: "
    "generation.output_dir or <run_dir>/dataset).",
)
@config_options
def evaluate(config: Any, models: tuple[str, ...], dataset: str | None) -> None:
    """Score models on the held-out split (perplexity, bits per byte, RAVEN) and write one comparison report.

    Models: this run's fine-tuned training.models (those trained already), then evaluation.models; or --model.

    Exits 2 when nothing could be evaluated; a model that fails is recorded in the report and the rest go on.
    """
    from hiwar.evaluation.run import run_evaluate, summary_text

    out = run_evaluate(config, list(models) or None, dataset)
    click.echo(summary_text(out))


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(),  # checked by hiwar.outdirs, before any work
    default=None,
    help="Output folder (default: judge.output_dir, else <run_dir>/judge).",
)
@config_options
def judge(config: Any, inputs: tuple[str, ...], out_dir: str | None) -> None:
    """Score INPUTS with the judge model (judge section) on the human-eval rubric.

    INPUTS: dataset folders (judge.split), conversation files, replies files of `hiwar evaluate`, or a
    human-eval export folder (then `hiwar human-eval analyze --judge` compares the judge with the raters).
    Resumable: rerun the same command to go on where it stopped.
    """
    from hiwar.judge.run import run_judge, summary_text

    click.echo(summary_text(run_judge(config, list(inputs), out_dir)))


_FORCE_HELP = "Redo work made with other settings or inputs (it is deleted first) instead of stopping."


@cli.command()
@click.option("--force", is_flag=True, help=_FORCE_HELP)
@config_options
def generate(config: Any, force: bool) -> None:
    """Generate the topic x country grid into a validated, deduplicated, split dataset.

    Resumable: rerun the same command after a crash or a kill to go on where it stopped.
    """
    from hiwar.generation.card import summary_text
    from hiwar.generation.run import run_generate

    click.echo(summary_text(run_generate(config, force=force)))


@cli.command()
@click.option(
    "--dataset",
    default=None,
    type=click.Path(),  # checked by hiwar.outdirs, before any work
    help="Dataset folder (default: generation.output_dir, else <run_dir>/dataset).",
)
@config_options
def split(config: Any, dataset: str | None) -> None:
    """Re-split a generated dataset with generation.splits (fractions, by_pair) and the run seed."""
    from hiwar.generation.card import splits_text
    from hiwar.generation.run import run_split

    click.echo(splits_text(run_split(config, dataset)))


@cli.command()
@click.option(
    "--dataset",
    default=None,
    help="Dataset folder or Parquet/JSONL file of conversations (default: generation.output_dir, else "
    "<run_dir>/dataset).",
)
@click.option("--only", default=None, metavar="NAME[,NAME]", help="Train only these training.models names.")
@click.option("--force", is_flag=True, help=_FORCE_HELP)
@config_options
def train(config: Any, dataset: str | None, only: str | None, force: bool) -> None:
    """Fine-tune each training.models entry with Ray Train (rerun to resume; finished models are skipped)."""
    from hiwar.training.run import run_train

    for out in run_train(config, dataset=dataset, only=only, force=force):
        click.echo(f"model: {out}")


@cli.command()
@click.option(
    "--from",
    "from_stage",
    default=None,
    metavar="STAGE",
    help="Redo this stage and every later one: generate, train, evaluate, human-eval, judge, report.",
)
@config_options
def pipeline(config: Any, from_stage: str | None) -> None:
    """Generate, train, evaluate, export human-eval sheets and report, in one resumable run folder."""
    from hiwar.pipeline import run_pipeline

    result = run_pipeline(
        config, from_stage=from_stage, on_stage=lambda o: click.echo(f"{o.stage:<11} {o.status} ({o.seconds:.0f} s)")
    )
    if result.ran_nothing:
        click.echo(f"nothing to do: every stage of {result.run_dir} is done (use --from STAGE to redo one)")
    else:
        click.echo(f"report: {result.run_dir / 'REPORT.md'}")


@cli.command()
@click.option(
    "--out",
    "out_dir",
    default="runs/demo",
    show_default=True,
    type=click.Path(),  # checked by hiwar.outdirs, before any work
    help="Folder for the demo's models, dataset, evaluation and report.",
)
@click.option(
    "--conversations",
    default=300,
    show_default=True,
    type=click.IntRange(10, 100_000),
    help="Conversations to generate.",
)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Ray Train workers.")
def demo(out_dir: str, conversations: int, workers: int) -> None:
    """The whole blueprint in miniature on this CPU: tiny models, no download, a few minutes."""
    from hiwar.demo import run_demo

    run_demo(out_dir, conversations=conversations, workers=workers, echo=click.echo)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="hiwar")


if __name__ == "__main__":
    main()
