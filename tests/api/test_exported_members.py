"""The public surface is deliberate (httpx's export test): ``__all__`` is the list of public
names, every one exists and is ours, nothing private or incidental leaks into the package."""

from __future__ import annotations

import inspect
import types

import openai_structured
from openai_structured import client, errors

#: Public submodules: importing the package makes them attributes, and users may import them.
PUBLIC_SUBMODULES = {
    "bulk",
    "cli",
    "client",
    "errors",
    "local",
    "registry",
    "schema",
    "servers",
    "streaming",
    "templates",
    "testing",
    "tokens",
}


def test_every_name_in_all_exists_and_is_defined_by_the_package() -> None:
    for name in openai_structured.__all__:
        member = getattr(openai_structured, name)
        if name == "__version__":
            assert isinstance(member, str)
            continue
        if not (inspect.isclass(member) or inspect.isfunction(member)):
            continue  # a type alias such as OnLog
        module = getattr(member, "__module__", "")
        assert module.startswith("openai_structured"), (name, module)


def test_all_has_no_duplicates_and_is_sorted() -> None:
    names = openai_structured.__all__
    assert len(names) == len(set(names))
    assert names == sorted(names)


def test_nothing_public_outside_all_except_the_public_submodules() -> None:
    extra = {
        name
        for name in dir(openai_structured)
        if not name.startswith("_") and name not in openai_structured.__all__
    }
    for name in extra:
        assert isinstance(getattr(openai_structured, name), types.ModuleType), name
    assert extra <= PUBLIC_SUBMODULES


def test_the_annotations_future_name_does_not_leak() -> None:
    assert "annotations" not in dir(openai_structured)


def test_errors_all_lists_every_exception_defined_there() -> None:
    defined = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
        and not name.startswith("_")
    }
    assert defined <= set(errors.__all__)
    assert "VersionTooOldError" in errors.__all__
    assert {"StreamProtocolError", "StreamServerError"} <= set(errors.__all__)


def test_every_exception_is_importable_from_the_package_root_too() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if inspect.isclass(obj):
            assert getattr(openai_structured, name) is obj, name


def test_the_exception_tree_is_drawn_in_the_errors_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        if inspect.isclass(getattr(errors, name)):
            assert name in doc, name


def test_the_client_module_has_what_the_seed_lists_under_it() -> None:
    # The seed's reference documents these under ``openai_structured.client``.
    for name in (
        "openai_structured_call",
        "async_openai_structured_call",
        "openai_structured_stream",
        "async_openai_structured_stream",
        "StructuredClient",
        "AsyncStructuredClient",
        "supports_structured_output",
        "get_context_window_limit",
        "get_default_token_limit",
    ):
        assert name in client.__all__
        assert getattr(client, name) is getattr(openai_structured, name)
    assert client.supports_structured_output("gpt-4o") is True
    assert client.supports_structured_output("gpt-3.5-turbo") is False
    assert client.get_context_window_limit("gpt-4o") == 128_000
    assert client.get_default_token_limit("gpt-4o") == 16_384
    assert client.get_context_window_limit("o1") == 200_000
    assert client.get_default_token_limit("o1") == 100_000


def test_the_bulk_package_exports_what_its_all_lists_and_nothing_private() -> None:
    from openai_structured import bulk

    assert bulk.__all__ == sorted(bulk.__all__)
    for name in bulk.__all__:
        member = getattr(bulk, name)
        assert getattr(member, "__module__", "").startswith("openai_structured.bulk"), name
    public = {n for n in dir(bulk) if not n.startswith("_") and not n.startswith("annotations")}
    # A public submodule (bulk.ray, the Ray integration) is an attribute once imported.
    submodules = {n for n in public if getattr(bulk, n).__name__ == f"{bulk.__name__}.{n}"}
    assert submodules <= {"ray"}
    assert public - set(bulk.__all__) - submodules == set()
