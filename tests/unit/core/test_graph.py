"""The one cycle finder (`controller.core.graph.find_cycles`) in both of its reporting modes."""

from __future__ import annotations

from controller.core.graph import find_cycles


def test_no_cycles_in_a_dag() -> None:
    graph = {"a": ["b", "c"], "b": ["c"], "c": []}
    assert find_cycles(graph) == []
    assert find_cycles(graph, one_per_component=True) == []


def test_unknown_nodes_and_self_edges_are_ignored() -> None:
    graph = {"a": ["a", "zz"], "b": ["a", "b"]}
    assert find_cycles(graph) == []
    assert find_cycles(graph, one_per_component=True) == []


def test_every_back_edge_closes_a_cycle() -> None:
    # one component, two back edges: the walk reports both, in the order it meets them
    graph = {"a": ["b"], "b": ["a", "c"], "c": ["b"]}
    assert find_cycles(graph) == [["a", "b", "a"], ["b", "c", "b"]]
    assert find_cycles(graph, one_per_component=True) == [["a", "b", "a"]]


def test_back_edge_cycles_start_where_the_back_edge_points() -> None:
    # the walk enters the cycle at b (from x), so the cycle starts at b, not at a
    graph = {"x": ["b"], "a": ["b"], "b": ["a"]}
    assert find_cycles(graph) == [["b", "a", "b"]]
    assert find_cycles(graph, one_per_component=True) == [["a", "b", "a"]]


def test_one_per_component_is_the_shortest_from_the_first_node() -> None:
    graph = {"a": ["b", "c"], "b": ["c"], "c": ["a"]}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles(graph, one_per_component=True) == [["a", "c", "a"]]
    reordered = {"c": ["a"], "a": ["b", "c"], "b": ["c"]}
    assert find_cycles(reordered, one_per_component=True) == [["c", "a", "c"]]


def test_a_self_edge_inside_a_component_is_not_a_cycle_of_its_own() -> None:
    graph = {"a": ["a", "b"], "b": ["a"]}
    assert find_cycles(graph) == [["a", "b", "a"]]
    assert find_cycles(graph, one_per_component=True) == [["a", "b", "a"]]


def test_separate_components_are_each_reported() -> None:
    graph = {"a": ["b"], "b": ["a"], "c": ["d"], "d": ["e"], "e": ["c", "a"]}
    assert find_cycles(graph) == [["a", "b", "a"], ["c", "d", "e", "c"]]
    assert sorted(find_cycles(graph, one_per_component=True)) == [
        ["a", "b", "a"],
        ["c", "d", "e", "c"],
    ]


def test_a_long_chain_does_not_hit_the_recursion_limit() -> None:
    n = 20_000
    graph = {f"n{i}": [f"n{i + 1}"] for i in range(n)}
    graph[f"n{n}"] = ["n0"]
    (cycle,) = find_cycles(graph)
    assert len(cycle) == n + 2 and cycle[0] == cycle[-1] == "n0"
    (shortest,) = find_cycles(graph, one_per_component=True)
    assert shortest == cycle
