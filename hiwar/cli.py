"""The ``hiwar`` command line. It only parses arguments and calls importable ``run_*`` functions.

Heavy packages (torch, ray, transformers, vllm) are imported inside the commands, so ``hiwar --help`` is instant.
User errors (:class:`hiwar.errors.HiwarError`) print one line and exit with status 2.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import click

from hiwar import __version__
from hiwar.errors import HiwarError


class UserError(click.ClickException):
    """A HiwarError as click shows it: ``Error: <one line>``, exit status 2."""

    exit_code = 2


class HiwarGroup(click.Group):
    """A click group that turns HiwarError from any subcommand into a one-line error."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HiwarError as err:
            raise UserError(str(err)) from err


def config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--config/-c`` and repeatable ``--set KEY=VALUE`` and pass a loaded ``config`` to the command."""

    @click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), default=None,
                  help="Run config YAML (see configs/). Default: built-in local defaults.")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Override a config value, e.g. --set generation.engine=vllm (repeatable).")
    @functools.wraps(func)
    def wrapper(config_path: str | None, overrides: tuple[str, ...], **kwargs: Any) -> Any:
        from hiwar.config import load_config

        return func(config=load_config(config_path, overrides), **kwargs)

    return wrapper


@click.group(cls=HiwarGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hiwar")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def cli(log_level: str) -> None:
    """hiwar (حوار): build Arabic multi-turn dialogue models end to end on Ray.

    Generate conversations with vLLM on Ray Data, fine-tune with Ray Train, evaluate with perplexity, bits per
    byte and RAVEN, and run the whole blueprint locally or as Ray jobs on a cluster.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command()
@click.option("--address", default=None, help="Ray address to check (default: RAY_ADDRESS, else 'auto').")
@click.option("--no-ray", is_flag=True, help="Skip the Ray reachability check.")
def doctor(address: str | None, no_ray: bool) -> None:
    """Show versions, CPUs/GPUs, Ray reachability and which engines can run here."""
    from hiwar.doctor import format_report, run_doctor

    click.echo(format_report(run_doctor(address=address, check_ray=not no_ray)))


@cli.command("config")
@config_options
def show_config(config: Any) -> None:
    """Print the resolved config (file, then --set overrides, every default filled in)."""
    from hiwar.config import to_yaml

    click.echo(to_yaml(config), nl=False)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="hiwar")


if __name__ == "__main__":
    main()
