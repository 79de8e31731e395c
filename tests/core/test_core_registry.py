"""Unit tests of snncore.registry: names, aliases, qualified names, conflicts, misses."""

from __future__ import annotations

import pytest

from snncore.registry import (
    Entry,
    NameConflictError,
    Provider,
    Registry,
    UnknownNameError,
    describe,
)

A = Provider("snn-a", "snn-a-dist", "1.2.3")
B = Provider("snn-b", "snn-b-dist", "4.5.6")


def _registry(*entries: Entry[object]) -> Registry[object]:
    registry: Registry[object] = Registry("model")
    for entry in entries:
        registry.add_all([entry])
    return registry


def test_add_and_get() -> None:
    lif, li = object(), object()
    registry: Registry[object] = Registry("model")
    registry.add_all([Entry("lif", lif, A), Entry("li", li, A)])
    assert registry.get("lif") is lif
    assert registry.get("li") is li
    assert "lif" in registry and "lsnn" not in registry and 3 not in registry
    assert list(registry) == ["li", "lif"]
    assert len(registry) == 2
    assert [e.name for e in registry.entries()] == ["li", "lif"]
    assert registry.entry("lif").provider == A


def test_alias_resolves_to_the_same_object_and_is_listed_once() -> None:
    superspike = object()
    registry = _registry(Entry("super", superspike, A, aliases=("fast_sigmoid", "ss")))
    assert registry.get("fast_sigmoid") is superspike
    assert registry.get("ss") is superspike
    assert registry.entry("fast_sigmoid").name == "super"
    assert [e.name for e in registry.entries()] == ["super"]
    assert "fast_sigmoid" in registry


def test_qualified_name_selects_the_provider() -> None:
    obj = object()
    registry = _registry(Entry("lif", obj, A, aliases=("leaky",)))
    assert registry.get("snn-a:lif") is obj
    assert registry.get("snn-a:leaky") is obj
    with pytest.raises(UnknownNameError):
        registry.get("snn-b:lif")


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_conflict_names_both_distributions_and_qualified_names(order: str) -> None:
    from_a, from_b, other = object(), object(), object()
    entries = {"a": Entry("lif", from_a, A), "b": Entry("lif", from_b, B)}
    registry = _registry(*(entries[k] for k in order), Entry("li", other, A))

    with pytest.raises(NameConflictError) as info:
        registry.get("lif")
    message = str(info.value)
    for expected in ("snn-a-dist", "snn-b-dist", "1.2.3", "4.5.6", "'snn-a:lif'", "'snn-b:lif'"):
        assert expected in message
    assert isinstance(info.value, LookupError)
    assert set(info.value.providers) == {A, B}

    # nothing overwritten: each provider stays reachable, and other names are unaffected
    assert registry.get("snn-a:lif") is from_a
    assert registry.get("snn-b:lif") is from_b
    assert registry.get("li") is other
    assert registry.conflicts() == {"lif": list(info.value.providers)}
    assert [e.provider.plugin for e in registry.entries() if e.name == "lif"] == ["snn-a", "snn-b"]


def test_alias_of_one_plugin_conflicts_with_name_of_another() -> None:
    registry = _registry(
        Entry("super", object(), A, aliases=("fast_sigmoid",)), Entry("fast_sigmoid", object(), B)
    )
    with pytest.raises(NameConflictError, match="snn-b-dist"):
        registry.get("fast_sigmoid")
    assert registry.get("super") is registry.get("snn-a:super")


def test_no_conflict_reported_when_names_differ() -> None:
    registry = _registry(Entry("lif", object(), A), Entry("lsnn", object(), B))
    assert registry.conflicts() == {}


def test_unknown_name_is_a_lookup_error_with_suggestions() -> None:
    registry = _registry(
        Entry("lif", object(), A), Entry("lsnn", object(), A), Entry("izhikevich", object(), B)
    )
    with pytest.raises(LookupError) as info:
        registry.get("lfi")
    error = info.value
    assert isinstance(error, UnknownNameError)
    assert "lif" in error.suggestions
    assert "izhikevich" not in error.suggestions
    message = str(error)
    assert message.startswith("unknown model 'lfi'")
    assert "Did you mean" in message and "'lif'" in message
    assert "snn list-models" in message
    assert error.known == ["izhikevich", "lif", "lsnn"]


def test_unknown_name_without_close_match_has_no_suggestion() -> None:
    registry = _registry(Entry("lif", object(), A))
    with pytest.raises(UnknownNameError) as info:
        registry.get("completely-different")
    assert info.value.suggestions == []
    assert "Did you mean" not in str(info.value)


def test_unknown_message_names_the_kind_command() -> None:
    registry: Registry[object] = Registry("surrogate")
    registry.add_all([Entry("super", object(), A)])
    with pytest.raises(UnknownNameError, match="snn list-surrogates"):
        registry.get("supr")


def test_unknown_qualified_name_suggests_qualified_names() -> None:
    registry = _registry(Entry("lif", object(), A))
    with pytest.raises(UnknownNameError) as info:
        registry.get("snn-a:lfi")
    assert "snn-a:lif" in info.value.suggestions


def test_plugin_registering_a_name_twice_is_rejected_and_adds_nothing() -> None:
    registry: Registry[object] = Registry("model")
    with pytest.raises(ValueError, match="twice"):
        registry.add_all(
            [Entry("ok", object(), A), Entry("lif", object(), A), Entry("lif", object(), A)]
        )
    assert len(registry) == 0
    assert "ok" not in registry


def test_plugin_alias_equal_to_its_own_name_is_rejected() -> None:
    registry: Registry[object] = Registry("surrogate")
    with pytest.raises(ValueError, match="twice"):
        registry.add_all([Entry("super", object(), A, aliases=("super",))])
    assert len(registry) == 0


def test_second_batch_from_same_plugin_cannot_reuse_a_name() -> None:
    first = object()
    registry = _registry(Entry("lif", first, A))
    with pytest.raises(ValueError, match="twice"):
        registry.add_all([Entry("new", object(), A), Entry("lif", object(), A)])
    assert registry.get("lif") is first
    assert "new" not in registry


@pytest.mark.parametrize("bad", ["", "a:b", "snn-a:lif"])
def test_invalid_names_are_rejected_all_or_nothing(bad: str) -> None:
    registry: Registry[object] = Registry("model")
    with pytest.raises(ValueError, match="invalid model name"):
        registry.add_all([Entry("good", object(), A), Entry(bad, object(), A)])
    assert "good" not in registry
    assert len(registry) == 0


def test_invalid_alias_is_rejected() -> None:
    registry: Registry[object] = Registry("model")
    with pytest.raises(ValueError, match="invalid"):
        registry.add_all([Entry("good", object(), A, aliases=("x:y",))])
    assert "good" not in registry


def test_provider_describe_mentions_runtime() -> None:
    assert Provider("p", "dist", "runtime").describe() == "dist registered at run time (plugin 'p')"
    assert Provider("p", "dist", "2.0").describe() == "dist 2.0 (plugin 'p')"


def test_describe_prefers_summary_then_docstring_first_line() -> None:
    class WithSummary:
        """Docstring line."""

        summary = "the summary"

    class WithDoc:
        """First line.

        More text.
        """

    class Bare:
        pass

    assert describe(WithSummary) == "the summary"
    assert describe(WithDoc) == "First line."
    assert describe(Bare()) == ""
