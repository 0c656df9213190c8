"""The library facade (``convstore.store``) is typed and documented: every public method has a
docstring, and the update/append methods take named keyword arguments (an unknown one is
refused by validation naming it, and flagged by mypy as ``Never``)."""

from __future__ import annotations

import inspect

import pytest

from convstore import store as facade

CLASSES = [facade.Store, facade.Users, facade.Conversations, facade.Messages, facade.Tasks]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_public_method_has_a_docstring(cls: type) -> None:
    methods = [n for n, f in vars(cls).items() if callable(f) and not n.startswith("_")]
    assert methods
    assert [n for n in methods if not inspect.getdoc(getattr(cls, n))] == []


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_no_method_takes_untyped_keyword_arguments(cls: type) -> None:
    untyped = [
        f"{cls.__name__}.{name}(**{p.name}: {p.annotation})"
        for name, f in vars(cls).items()
        if callable(f)
        for p in inspect.signature(f).parameters.values()
        if p.kind is p.VAR_KEYWORD and p.annotation != "Never"
    ]
    assert untyped == []
