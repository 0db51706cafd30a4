"""One registry of environment ids: ``register``, ``make`` and ``registered_envs``.

accelrl ids are registered here with a factory; gymnax ids pass through to ``gymnax.make``, so
``make`` serves both. The same ids are mirrored into gymnasium under ``accelrl/<id>`` by
:mod:`accelrl.envs.gymnasium_adapter`.

Nothing here imports gymnax or an environment module: importing gymnax runs its whole
environment zoo (matplotlib, seaborn, scipy.stats, pandas; seconds), so listing ids, checking
them and failing on an unknown one stay fast. accelrl's own environment modules are *provided*
(:func:`provide`: an id and the module that registers it when imported) and imported by the
first :func:`make` of one of their ids; gymnax ids are a static tuple (:data:`GYMNAX_IDS`, pinned
to the installed gymnax by a test) and gymnax itself is imported by the first ``make`` of one.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

from accelrl._catalog import GYMNAX_ENV_IDS

EnvFactory = Callable[..., Any]

_REGISTRY: dict[str, EnvFactory] = {}
_MULTI_AGENT: set[str] = set()
# id -> module that registers it on import, for provided ids whose module is not imported yet.
_PROVIDERS: dict[str, str] = {}

#: Every id of ``gymnax.registered_envs`` (gymnax 1.0.1), so that ids can be listed and checked
#: without importing gymnax. tests/envs/test_registry.py checks it against the installed gymnax.
GYMNAX_IDS: tuple[str, ...] = GYMNAX_ENV_IDS

# gymnax environments with upstream faults: reachable through ``make`` but kept out of strict
# checks (docs/envs/README.md lists why).
GYMNAX_KNOWN_FAULTS: dict[str, str] = {
    "MNISTBandit-bsuite": "downloads MNIST in its constructor (no network in CI)",
    "MemoryChain-bsuite": "observations outside its own observation space",
    "GaussianBandit-misc": "observations outside its own observation space",
    "MetaMaze-misc": "observations outside its own observation space",
    "Catch-bsuite": "observation dtype does not match its space (gymnasium dtype check)",
    "FourRooms-misc": "observation dtype does not match its space (gymnasium dtype check)",
}


class UnknownEnvironmentError(ValueError):
    """Raised by :func:`make` for an id that is neither accelrl's nor gymnax's."""


def register(env_id: str, factory: EnvFactory, *, multi_agent: bool = False) -> None:
    """Register an accelrl environment.

    Args:
        env_id: public id, e.g. ``"ThreeBody-v0"``. A change of dynamics or reward bumps the
            version suffix.
        factory: callable taking the ``make`` keyword arguments and returning the environment.
        multi_agent: whether the environment follows the :class:`MultiAgentEnv` contract.

    Raises:
        ValueError: if the id is empty, already registered, shadows a gymnax id, or is provided
            by a module (:func:`provide`) other than the one being imported.
    """
    _check_id(env_id)
    if not callable(factory):
        raise TypeError(f"factory for {env_id!r} must be callable, got {type(factory).__name__}")
    provided = env_id in _PROVIDERS
    if provided:
        module = _PROVIDERS[env_id]
        if module not in sys.modules:  # only the providing module, while imported, registers it
            raise ValueError(f"{env_id!r} is provided by {module}; import that module instead")
        if multi_agent != (env_id in _MULTI_AGENT):
            raise ValueError(
                f"{env_id!r} was provided with multi_agent={not multi_agent} but {module} "
                f"registers it with multi_agent={multi_agent}"
            )
        del _PROVIDERS[env_id]
    _REGISTRY[env_id] = factory
    if multi_agent:
        _MULTI_AGENT.add(env_id)
    if not provided:  # a provided id was announced by ``provide``
        _on_register(env_id)


def provide(env_id: str, module: str, *, multi_agent: bool = False) -> None:
    """Declare that importing ``module`` registers ``env_id``, without importing it yet.

    The id is listed by :func:`registered_envs` (and mirrored into gymnasium) at once; the first
    :func:`make` of it imports ``module``, whose import-time :func:`register` call must register
    it with the same ``multi_agent``.

    Raises:
        ValueError: as :func:`register` does for a bad, taken or gymnax id.
    """
    _check_id(env_id)
    if env_id in _PROVIDERS:
        raise ValueError(f"{env_id!r} is already registered (provided by {_PROVIDERS[env_id]})")
    _PROVIDERS[env_id] = module
    if multi_agent:
        _MULTI_AGENT.add(env_id)
    _on_register(env_id)


def _check_id(env_id: str) -> None:
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"environment id must be a non-empty string, got {env_id!r}")
    if env_id in _REGISTRY:
        raise ValueError(f"{env_id!r} is already registered")
    if env_id in GYMNAX_IDS:
        raise ValueError(f"{env_id!r} is a gymnax id; accelrl ids must not shadow gymnax ids")


def registered_envs(*, include_gymnax: bool = False) -> list[str]:
    """Ids registered (or provided) by accelrl, plus gymnax's when ``include_gymnax``, sorted.

    Imports neither gymnax nor any environment module.
    """
    ids = sorted([*_REGISTRY, *_PROVIDERS])
    if include_gymnax:
        ids += sorted(GYMNAX_IDS)
    return ids


def is_multi_agent(env_id: str) -> bool:
    """Whether ``env_id`` is a registered multi-agent accelrl id."""
    return env_id in _MULTI_AGENT


def _all_ids() -> list[str]:
    return [*_REGISTRY, *_PROVIDERS, *GYMNAX_IDS]


def _unknown(env_id: str) -> UnknownEnvironmentError:
    close = difflib.get_close_matches(env_id, _all_ids(), n=5, cutoff=0.4)
    if not close:  # fall back to a case-insensitive substring match
        low = env_id.lower().split("-")[0]
        close = [i for i in _all_ids() if low and low in i.lower()][:5]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownEnvironmentError(
        f"unknown environment id {env_id!r}.{hint} "
        f"See accelrl.envs.registered_envs(include_gymnax=True) for all ids."
    )


def _check_kwargs(env_id: str, factory: EnvFactory, kwargs: dict[str, Any]) -> None:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    accepted = [
        n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    bad = [k for k in kwargs if k not in accepted]
    if bad:
        raise TypeError(
            f"make({env_id!r}) got unexpected keyword argument(s) {bad}; "
            f"accepted: {accepted or 'none'}"
        )


def make(env_id: str, **kwargs: Any) -> tuple[Any, Any]:
    """Build an environment and its default params.

    Args:
        env_id: an accelrl id (``registered_envs()``) or a gymnax id (``"CartPole-v1"``).
        **kwargs: constructor arguments (what fixes shapes, e.g. ``num_agents``).

    Returns:
        ``(env, env_params)``; ``env_params`` is the environment's ``default_params``.

    Raises:
        UnknownEnvironmentError: for an unknown id, listing the closest ids.
        TypeError: for keyword arguments the environment does not accept.
    """
    if env_id in _PROVIDERS:
        module = _PROVIDERS[env_id]
        importlib.import_module(module)  # registers env_id
        if env_id in _PROVIDERS:
            raise RuntimeError(f"importing {module} did not register {env_id!r}")
    if env_id in _REGISTRY:
        factory = _REGISTRY[env_id]
    elif env_id in GYMNAX_IDS:
        import gymnax  # lazy: imports gymnax's whole environment zoo (seconds)

        factory = gymnax.registration._registry[env_id]
    else:
        raise _unknown(env_id)
    _check_kwargs(env_id, factory, kwargs)
    env = factory(**kwargs)
    return env, env.default_params


# Hook set by the gymnasium adapter so ids registered later are mirrored into gymnasium too.
_register_listeners: list[Callable[[str], None]] = []


def _on_register(env_id: str) -> None:
    for listener in _register_listeners:
        listener(env_id)
