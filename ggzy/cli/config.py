"""``--config FILE``: every command takes the settings file the same way.

The file is the TOML the settings object reads (``ggzy/settings.py``): a hub's has a ``[hub]``
section, a node's a ``[node]`` section; either may add ``[security]``, ``[audit]``, ``[backup]``,
``[validation]``. ``--config`` does exactly what ``GGZY_CONFIG=FILE`` does, for the one command, and
commands that may act on a hub or on a node (``login``, ``admin account``, ``audit``, ``backup``)
tell which from the file's sections: ``[node]`` without ``[hub]`` is a node.

:func:`add_config_option` gives every command of the ``ggzy`` app the option (commands that already
declare ``config`` keep theirs and get the same treatment), so a new command cannot forget it.
"""

from __future__ import annotations

import functools
import inspect
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from ggzy.cli.console import err

__all__ = ["ConfigOption", "add_config_option", "is_node_config", "use_config"]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="配置文件（TOML：国家平台用 \\[hub] 段，交换前置节点用 \\[node] 段），同 GGZY_CONFIG",
    ),
]
EXIT_CONFIG = 2


def use_config(path: Path | None) -> None:
    """Read the settings from ``path`` for the rest of the command (as ``GGZY_CONFIG`` would)."""
    from ggzy.settings import get_settings

    if path is None:
        return
    if not path.is_file():
        err.print(f"[red]E-CONFIG-MISSING[/] 配置文件不存在：{path}", markup=True)
        raise typer.Exit(EXIT_CONFIG)
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        err.print(f"[red]E-CONFIG-INVALID[/] 配置文件无法读取：{path}（{exc}）")
        raise typer.Exit(EXIT_CONFIG) from None
    previous = os.environ.get("GGZY_CONFIG")
    os.environ["GGZY_CONFIG"] = str(path)
    get_settings.cache_clear()
    context = click.get_current_context(silent=True)
    if context is not None:  # in-process callers (tests) get their environment back afterwards

        def restore() -> None:
            if previous is None:
                os.environ.pop("GGZY_CONFIG", None)
            else:
                os.environ["GGZY_CONFIG"] = previous
            get_settings.cache_clear()

        context.call_on_close(restore)


def is_node_config(path: Path) -> bool:
    """A node's file: a ``[node]`` section and no ``[hub]`` section."""
    try:
        sections = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return "node" in sections and "hub" not in sections


def _configurable(command: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(command, eval_str=True)
    if "config" in signature.parameters:

        @functools.wraps(command)
        def declared(*args: Any, **kwargs: Any) -> Any:
            use_config(kwargs.get("config"))
            return command(*args, **kwargs)

        return declared

    @functools.wraps(command)
    def added(*args: Any, config: Path | None = None, **kwargs: Any) -> Any:
        use_config(config)
        return command(*args, **kwargs)

    option = inspect.Parameter(
        "config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigOption
    )
    added.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), option]
    )
    added.__annotations__ = {**getattr(command, "__annotations__", {}), "config": ConfigOption}
    return added


def add_config_option(app: typer.Typer) -> None:
    """Give every command under ``app`` the ``--config`` option (once; idempotent)."""
    for info in app.registered_commands:
        if info.callback is not None and not getattr(info.callback, "__ggzy_config__", False):
            info.callback = _configurable(info.callback)
            info.callback.__ggzy_config__ = True  # type: ignore[attr-defined]
    for group in app.registered_groups:
        if group.typer_instance is None:
            continue
        callback = group.typer_instance.registered_callback
        if callback is not None and callback.callback is not None:
            declares = "config" in inspect.signature(callback.callback).parameters
            if declares and not getattr(callback.callback, "__ggzy_config__", False):
                callback.callback = _configurable(callback.callback)  # a group run as a command
                callback.callback.__ggzy_config__ = True  # type: ignore[attr-defined]
        add_config_option(group.typer_instance)
