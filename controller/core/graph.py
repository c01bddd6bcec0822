"""Cycles in a dependency graph: the one cycle finder of the spec checks and the ROADMAP parser.

A graph maps each node to the nodes it depends on, in order. Edges to nodes that are not keys
of the graph and edges from a node to itself are ignored: callers report those as unknown and
self dependencies. The walk is iterative (no recursion limit on long dependency chains) and
deterministic: results depend only on the graph's iteration order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

Graph = Mapping[str, Sequence[str]]


def find_cycles(graph: Graph, *, one_per_component: bool = False) -> list[list[str]]:
    """Dependency cycles of `graph`, each as [a, b, ..., a].

    By default, every cycle that closes a back edge of one depth-first walk (roots and
    successors in the graph's order), starting at the node the back edge points to; one node
    can be part of several. With `one_per_component`, one cycle per strongly connected
    component of more than one node: the shortest way from the component's first node (in
    the graph's order) back to itself, so each tangle is reported exactly once.
    """
    walk = _walk(graph, back_edges=not one_per_component)
    if not one_per_component:
        return walk.back_edge_cycles
    rank = {node: i for i, node in enumerate(graph)}
    return [
        _shortest_cycle(graph, set(comp), min(comp, key=rank.__getitem__))
        for comp in walk.components
    ]


@dataclass
class _Walk:
    """One depth-first walk: Tarjan's strongly connected components, and the cycles its back
    edges close when `back_edges` (copying the path for each costs O(path) per back edge)."""

    back_edges: bool
    back_edge_cycles: list[list[str]] = field(default_factory=list)
    components: list[list[str]] = field(default_factory=list)  # only those of 2+ nodes
    index: dict[str, int] = field(default_factory=dict)
    low: dict[str, int] = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)  # Tarjan's stack
    on_stack: set[str] = field(default_factory=set)
    path: list[str] = field(default_factory=list)  # the current depth-first path
    on_path: set[str] = field(default_factory=set)

    def enter(self, node: str) -> None:
        self.index[node] = self.low[node] = len(self.index)
        self.stack.append(node)
        self.on_stack.add(node)
        self.path.append(node)
        self.on_path.add(node)

    def leave(self, node: str) -> None:
        self.path.pop()
        self.on_path.discard(node)
        if self.low[node] != self.index[node]:
            return
        comp: list[str] = []
        while True:
            w = self.stack.pop()
            self.on_stack.discard(w)
            comp.append(w)
            if w == node:
                break
        if len(comp) > 1:
            self.components.append(comp)

    def edge(self, node: str, child: str) -> None:
        """An edge to a node already entered: a back edge closes a cycle of the path."""
        if child in self.on_stack:
            self.low[node] = min(self.low[node], self.index[child])
            if self.back_edges and child in self.on_path:
                self.back_edge_cycles.append(self.path[self.path.index(child) :] + [child])


def _walk(graph: Graph, *, back_edges: bool) -> _Walk:
    walk = _Walk(back_edges)
    for root in graph:
        if root in walk.index:
            continue
        walk.enter(root)
        frames: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        while frames:
            node, children = frames[-1]
            child = next(children, None)
            if child is None:
                frames.pop()
                walk.leave(node)
                if frames:
                    parent = frames[-1][0]
                    walk.low[parent] = min(walk.low[parent], walk.low[node])
            elif child not in graph or child == node:
                continue
            elif child in walk.index:
                walk.edge(node, child)
            else:
                walk.enter(child)
                frames.append((child, iter(graph[child])))
    return walk


def _shortest_cycle(graph: Graph, members: set[str], start: str) -> list[str]:
    """Breadth-first search for the shortest way back to `start` inside its component."""
    prev: dict[str, str | None] = {start: None}
    queue = deque([start])
    last: str | None = None
    while queue and last is None:
        node = queue.popleft()
        for succ in graph[node]:
            if succ == start and node != start:
                last = node
                break
            if succ in members and succ not in prev:
                prev[succ] = node
                queue.append(succ)
    path: list[str] = []
    step = last
    while step is not None:
        path.append(step)
        step = prev[step]
    path.reverse()
    return [*path, start]
