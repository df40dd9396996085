"""Temporal neighbor sampling that works without ``pyg-lib``.

PyG's own temporal sampling (``NeighborLoader(time_attr=...)``) needs ``pyg-lib``, which PyPI does
not carry. :class:`TemporalNeighborSampler` is a :class:`torch_geometric.sampler.BaseSampler`
written in plain, vectorised PyTorch, so PyG's ``NodeLoader`` / ``LinkLoader`` drive it::

    sampler = TemporalNeighborSampler(data, [10, 5], time_attr="time")
    loader = NodeLoader(data, node_sampler=sampler, input_nodes=("user", users),
                        input_time=times, batch_size=1024)

Semantics (the leakage rule of DESIGN.md):

* an edge with a ``time_attr`` may be sampled for a seed at time ``t`` only if its time is
  **strictly** older than ``t``; edge types without the attribute are static and always allowed;
* every sampled node inherits its seed's time (as in PyG's temporal sampling), so hop 2 sees only
  edges older than the seed too;
* with a seed time the subgraphs are *disjoint* (one per seed, ``batch`` says which), because two
  seeds at different times see different neighborhoods;
* ``strategy="uniform"``: ``k`` allowed neighbors without replacement (all if fewer);
  ``strategy="last"``: the ``k`` most recent allowed neighbors.

Where ``torch_geometric.typing.WITH_PYG_LIB`` is true and ``use_pyg_lib=True``, the sampler
delegates to PyG's native :class:`~torch_geometric.sampler.NeighborSampler` and shifts integer seed
times by one second, since pyg-lib allows ``edge_time <= seed_time``.

How it is fast: at construction the edges of each type are sorted once by ``(dst, time)`` into a
CSC layout with a composite key ``dst * mult + code(time)`` (see :class:`_Csc`); the allowed
neighbors of every frontier node, a prefix of its time-sorted segment, come from one
``torch.searchsorted`` on that key. Uniform sampling without replacement is Floyd's algorithm
run for all frontier nodes at once (``k`` vector steps, no per-node loop); per-subgraph node
dedup is a sorted-key lookup. Loops run only over hops and edge types.

Threads: on a small, shared CPU keep ``torch.set_num_threads(1)`` (or sample in loader workers):
the many small tensor ops here were about 50x slower with 2 intra-op threads on an oversubscribed
2-core machine (``benchmarks/sampling.py --threads``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData
from torch_geometric.sampler import (BaseSampler, EdgeSamplerInput, HeteroSamplerOutput,
                                     NegativeSampling, NodeSamplerInput, SamplerOutput)
from torch_geometric.sampler.neighbor_sampler import edge_sample, node_sample

import torch_geometric.typing

EdgeType = Tuple[str, str, str]
NumNeighbors = Union[Sequence[int], Dict[EdgeType, Sequence[int]]]

# The node/edge type a homogeneous ``Data`` is mapped onto internally.
_HOMO_NODE = "_node"
_HOMO_EDGE: EdgeType = (_HOMO_NODE, "_to", _HOMO_NODE)
STRATEGIES = ("uniform", "last")


@dataclass
class _Csc:
    """One edge type sorted by ``(dst, time)``.

    Shapes: ``E`` edges, ``N`` destination nodes. ``colptr (N+1,)``, ``row (E,)`` source of each
    sorted edge, ``eid (E,)`` its id in the input graph, ``key (E,)`` ``dst * mult + tcode``
    (``None`` when the type has no time). ``tcode`` is ``time - t0`` for integer times when
    ``N * mult`` fits in int64 (one sort), else the rank of the time among ``times (K,)``,
    the sorted distinct edge times (``mult = K + 1``).
    """

    colptr: Tensor
    row: Tensor
    eid: Tensor
    key: Optional[Tensor] = None
    mult: int = 0
    t0: int = 0
    times: Optional[Tensor] = None

    @property
    def temporal(self) -> bool:
        return self.key is not None

    def time_code(self, t: Tensor) -> Tensor:
        """Code ``c`` of seed times such that an edge is strictly older iff its code is < ``c``."""
        if self.times is not None:
            return torch.searchsorted(self.times, t.to(self.times.dtype), right=False)
        return (t.long() - self.t0).clamp_(0, self.mult - 1)


def _build_csc(edge_index: Tensor, num_dst: int, time: Optional[Tensor]) -> _Csc:
    """Sort edges by destination then time; see :class:`_Csc`."""
    src, dst = edge_index[0].long(), edge_index[1].long()
    deg = torch.bincount(dst, minlength=num_dst)
    colptr = torch.zeros(num_dst + 1, dtype=torch.long, device=dst.device)
    torch.cumsum(deg, 0, out=colptr[1:])
    if time is None:
        order = torch.argsort(dst, stable=True)
        return _Csc(colptr=colptr, row=src[order], eid=order)
    if time.dim() != 1 or time.numel() != dst.numel():
        raise ValueError(f"edge time must be 1-D with one value per edge; got {tuple(time.shape)}")
    times = None
    if time.numel() and not time.is_floating_point():
        t0, t1 = int(time.min()), int(time.max())
        mult = t1 - t0 + 2  # codes 0..t1-t0, plus one "after everything" code for late seeds
        if (num_dst + 1) * mult < 2**62:
            key = dst * mult + (time.long() - t0)
        else:
            times = torch.empty(0)
    else:
        times, t0 = torch.empty(0), 0
    if times is not None:
        # Ranks keep the key far from int64 overflow: N * (K + 1) <= N * (E + 1).
        times, rank = torch.unique(time, sorted=True, return_inverse=True)
        mult, t0 = times.numel() + 1, 0
        key = dst * mult + rank
    order = torch.argsort(key, stable=True)
    return _Csc(colptr=colptr, row=src[order], eid=order, key=key[order], mult=mult, t0=t0, times=times)


def _ragged_arange(counts: Tensor) -> Tuple[Tensor, Tensor]:
    """For counts ``(M,)``: owner ``(sum,)`` of each slot and its offset ``0..counts[i]-1``."""
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    start = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(owner.numel(), device=counts.device) - start[owner]


def _floyd(n: Tensor, k: int, gen: Optional[torch.Generator]) -> Tensor:
    """``k`` distinct uniform draws from ``range(n[i])`` for every row: ``(M, k)`` (needs n > k).

    Floyd's algorithm: for ``j = n-k .. n-1`` draw ``t`` in ``[0, j]`` and keep ``t``, or ``j`` if
    ``t`` was already kept. Every ``k``-subset is equally likely; the loop runs ``k`` times over
    all rows at once.
    """
    m = n.numel()
    out = torch.empty(m, k, dtype=torch.long, device=n.device)
    for s in range(k):
        j = n - k + s  # (M,)
        u = torch.rand(m, dtype=torch.float64, device=n.device, generator=gen)
        t = torch.minimum((u * (j + 1).double()).long(), j)
        dup = (out[:, :s] == t.unsqueeze(1)).any(dim=1)
        out[:, s] = torch.where(dup, j, t)
    return out


class TemporalNeighborSampler(BaseSampler):
    r"""Multi-hop temporal neighbor sampler for ``Data`` / ``HeteroData`` (no pyg-lib needed).

    Args:
        data: the graph. Edge types whose store holds ``time_attr`` are temporal.
        num_neighbors: fan-out per hop, one list for all edge types or a dict per edge type
            (omitted types are not sampled); ``-1`` takes all allowed neighbors.
        time_attr: name of the edge time attribute (``None``: no temporal constraint).
        strategy: ``"uniform"`` (without replacement) or ``"last"`` (most recent ``k``).
        disjoint: one subgraph per seed; forced on when any edge type is temporal.
        seed: seeds the sampler's own random generator (reproducible draws).
        use_pyg_lib: delegate to PyG's native sampler when pyg-lib is installed.

    Shapes (homogeneous output, PyG's ``SamplerOutput``): ``node (N_s,)`` global ids,
    ``row/col (E_s,)`` local indices into ``node`` (``row`` = source), ``edge (E_s,)`` ids into the
    input graph's edges, ``batch (N_s,)`` the seed of each node (disjoint mode).
    """

    def __init__(
        self,
        data: Union[Data, HeteroData],
        num_neighbors: NumNeighbors,
        *,
        time_attr: Optional[str] = "time",
        strategy: str = "uniform",
        disjoint: bool = False,
        seed: Optional[int] = None,
        use_pyg_lib: bool = True,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy={strategy!r}; choose one of {STRATEGIES}")
        self.strategy = strategy
        self.time_attr = time_attr
        self.is_hetero = isinstance(data, HeteroData)

        if self.is_hetero:
            self.node_types = list(data.node_types)
            self.edge_types = [tuple(et) for et in data.edge_types]
            self.num_nodes = {nt: int(data[nt].num_nodes) for nt in self.node_types}
            stores = {et: data[et] for et in self.edge_types}
        else:
            self.node_types, self.edge_types = [_HOMO_NODE], [_HOMO_EDGE]
            self.num_nodes = {_HOMO_NODE: int(data.num_nodes)}
            stores = {_HOMO_EDGE: data}

        self.fanouts = self._resolve_fanouts(num_neighbors)
        self.num_hops = len(next(iter(self.fanouts.values()))) if self.fanouts else 0

        self.is_temporal = time_attr is not None and any(
            time_attr in store for et, store in stores.items() if et in self.fanouts)
        self.disjoint = bool(disjoint or self.is_temporal)
        self.csc: Dict[EdgeType, _Csc] = {}
        self._native = None
        if use_pyg_lib and torch_geometric.typing.WITH_PYG_LIB:
            from torch_geometric.sampler import NeighborSampler

            if not self.is_hetero:
                nn: NumNeighbors = self.fanouts[_HOMO_EDGE]
            else:  # PyG wants every edge type named; omitted ones are not sampled here
                nn = {et: self.fanouts.get(et, [0] * self.num_hops) for et in self.edge_types}
            self._native = NeighborSampler(data, nn, time_attr=time_attr if self.is_temporal else None,
                                           temporal_strategy=strategy, disjoint=self.disjoint)
            return

        for et, store in stores.items():
            if et in self.fanouts:
                t = store[time_attr] if time_attr is not None and time_attr in store else None
                self.csc[et] = _build_csc(store.edge_index, self.num_nodes[et[2]], t)
        self.device = next(iter(self.csc.values())).row.device if self.csc else torch.device("cpu")
        self.generator: Optional[torch.Generator] = None
        if seed is not None:
            self.generator = torch.Generator(device=self.device)
            self.generator.manual_seed(seed)

    # ------------------------------------------------------------------ config
    def _resolve_fanouts(self, num_neighbors: NumNeighbors) -> Dict[EdgeType, List[int]]:
        if isinstance(num_neighbors, dict):
            out = {}
            for et, f in num_neighbors.items():
                et = _HOMO_EDGE if not self.is_hetero else tuple(et)
                if et not in self.edge_types:
                    raise ValueError(f"num_neighbors names edge type {et}, not in the graph "
                                     f"(edge types: {self.edge_types})")
                out[et] = [int(x) for x in f]
        else:
            out = {et: [int(x) for x in num_neighbors] for et in self.edge_types}
        lens = {len(v) for v in out.values()}
        if len(lens) > 1:
            raise ValueError(f"num_neighbors lists must all have one entry per hop; got lengths {lens}")
        return out

    @property
    def edge_permutation(self):
        # Our sampled ``edge`` ids already index the input graph's edges; pyg-lib's index its CSC.
        return self._native.edge_permutation if self._native is not None else None

    # ------------------------------------------------------------------ BaseSampler API
    def sample_from_nodes(self, inputs: NodeSamplerInput, **kwargs) -> Union[SamplerOutput, HeteroSamplerOutput]:
        """Sample around seed nodes (with optional seed times); PyG's ``NodeLoader`` calls this."""
        if self._native is not None:
            return self._native.sample_from_nodes(_shift_node_time(inputs))
        return node_sample(inputs, self._sample)

    def sample_from_edges(self, inputs: EdgeSamplerInput,
                          neg_sampling: Optional[NegativeSampling] = None) -> Union[SamplerOutput, HeteroSamplerOutput]:
        """Sample around both endpoints of seed links; PyG's ``LinkLoader`` calls this.

        Negative sampling and label bookkeeping reuse PyG's ``edge_sample`` (seed times of
        negatives are their positive's time).
        """
        if self._native is not None:
            return self._native.sample_from_edges(_shift_edge_time(inputs), neg_sampling)
        num_nodes = self.num_nodes if self.is_hetero else self.num_nodes[_HOMO_NODE]
        return edge_sample(inputs, self._sample, num_nodes, self.disjoint, None, neg_sampling)

    def sample_seeds(self, seed: Dict[str, Tensor],
                     seed_time: Optional[Dict[str, Tensor]] = None) -> HeteroSamplerOutput:
        """Sample around seeds of one or several node types at once, without a loader.

        ``seed``: ``{node type: (S_t,) ids}`` (unique per type unless disjoint). Each type's seeds
        are the first nodes of that type in ``out.node``, in order. Not available when sampling
        is delegated to pyg-lib (construct with ``use_pyg_lib=False``).
        """
        if self._native is not None:
            raise RuntimeError("sample_seeds needs the built-in sampler; construct with use_pyg_lib=False")
        if not self.is_hetero:
            raise ValueError("sample_seeds is for heterogeneous graphs; use sample_from_nodes for a Data")
        return self._sample_hetero(seed, seed_time)

    # ------------------------------------------------------------------ core
    def _sample(self, seed: Union[Tensor, Dict[str, Tensor]],
                seed_time: Optional[Union[Tensor, Dict[str, Tensor]]] = None,
                **kwargs) -> Union[SamplerOutput, HeteroSamplerOutput]:
        if not self.is_hetero:
            out = self._sample_hetero({_HOMO_NODE: seed},
                                      None if seed_time is None else {_HOMO_NODE: seed_time})
            return SamplerOutput(
                node=out.node[_HOMO_NODE], row=out.row[_HOMO_EDGE], col=out.col[_HOMO_EDGE],
                edge=out.edge[_HOMO_EDGE],
                batch=None if out.batch is None else out.batch[_HOMO_NODE],
                num_sampled_nodes=out.num_sampled_nodes[_HOMO_NODE],
                num_sampled_edges=out.num_sampled_edges[_HOMO_EDGE])
        return self._sample_hetero(seed, seed_time)

    def _sample_hetero(self, seed: Dict[str, Tensor],
                       seed_time: Optional[Dict[str, Tensor]]) -> HeteroSamplerOutput:
        dev = self.device
        seed = {nt: s.to(dev).long().view(-1) for nt, s in seed.items()}
        for nt in seed:
            if nt not in self.num_nodes:
                raise ValueError(f"seed node type {nt!r} not in the graph ({self.node_types})")

        # Global batch ids: seeds of all types numbered consecutively (PyG's edge_sample folds
        # them back with ``batch % num_pos``); ``batch_time[b]`` is the time of subgraph b.
        batch_time: Optional[Tensor] = None
        if seed_time is not None:
            batch_time = torch.cat([seed_time[nt].to(dev).view(-1) for nt in seed])
        offset = 0
        state: Dict[str, _NodeSet] = {nt: _NodeSet(self.num_nodes[nt], self.disjoint, self.num_hops, dev)
                                      for nt in self.node_types}
        frontier: Dict[str, Tuple[Tensor, Tensor, Tensor]] = {}
        for nt, s in seed.items():
            b = torch.arange(offset, offset + s.numel(), device=dev)
            offset += s.numel()
            if not self.disjoint and torch.unique(s).numel() != s.numel():
                raise ValueError(f"seed nodes of type {nt!r} repeat; pass unique seeds or use disjoint=True")
            frontier[nt] = (s, b, state[nt].add_seeds(s, b))

        rows: Dict[EdgeType, List[Tensor]] = {et: [] for et in self.fanouts}
        cols: Dict[EdgeType, List[Tensor]] = {et: [] for et in self.fanouts}
        eids: Dict[EdgeType, List[Tensor]] = {et: [] for et in self.fanouts}
        n_edges: Dict[EdgeType, List[int]] = {et: [] for et in self.fanouts}

        for hop in range(self.num_hops):
            cand: Dict[str, List[Tuple[EdgeType, Tensor, Tensor]]] = {}
            hop_cols: Dict[EdgeType, Tensor] = {}
            for et, fan in self.fanouts.items():
                k = fan[hop]
                if k == 0 or et[2] not in frontier:
                    continue
                node, batch, local = frontier[et[2]]
                t = None if batch_time is None else batch_time[batch]
                pos, owner = self._sample_edges(self.csc[et], node, t, k)
                cand.setdefault(et[0], []).append((et, self.csc[et].row[pos], batch[owner]))
                hop_cols[et] = local[owner]
                eids[et].append(self.csc[et].eid[pos])

            new_frontier = {}
            for nt, items in cand.items():
                src = torch.cat([x[1] for x in items])
                bat = torch.cat([x[2] for x in items])
                loc, new = state[nt].add(src, bat, hop)
                new_frontier[nt] = new
                start = 0
                for et, s, _ in items:
                    rows[et].append(loc[start:start + s.numel()])
                    cols[et].append(hop_cols[et])
                    start += s.numel()
            for et in self.fanouts:
                n_edges[et].append(int(hop_cols[et].numel()) if et in hop_cols else 0)
            frontier = new_frontier

        empty = torch.empty(0, dtype=torch.long, device=dev)
        cat = lambda xs: torch.cat(xs) if xs else empty  # noqa: E731
        return HeteroSamplerOutput(
            node={nt: st.nodes() for nt, st in state.items()},
            row={et: cat(v) for et, v in rows.items()},
            col={et: cat(v) for et, v in cols.items()},
            edge={et: cat(v) for et, v in eids.items()},
            batch={nt: st.batches() for nt, st in state.items()} if self.disjoint else None,
            num_sampled_nodes={nt: st.per_hop for nt, st in state.items()},
            num_sampled_edges=n_edges,
        )

    def _sample_edges(self, csc: _Csc, node: Tensor, time: Optional[Tensor], k: int) -> Tuple[Tensor, Tensor]:
        """Pick up to ``k`` allowed in-edges of each frontier node.

        Returns ``pos`` (positions into the sorted edge arrays) and ``owner`` (index into
        ``node`` of the frontier node each picked edge belongs to), both ``(E_picked,)``.
        """
        start = csc.colptr[node]
        if csc.temporal and time is not None:
            # The query key lands right after the node's last strictly-older edge.
            end = torch.searchsorted(csc.key, node * csc.mult + csc.time_code(time), right=False)
        else:
            end = csc.colptr[node + 1]
        n = end - start  # (M,) allowed neighbors per frontier node

        if k < 0:
            take = n
        else:
            take = torch.clamp(n, max=k)
        if k < 0 or self.strategy == "last":
            owner, off = _ragged_arange(take)
            return (end - take)[owner] + off, owner

        small = n <= k
        owner_s, off_s = _ragged_arange(torch.where(small, n, torch.zeros_like(n)))
        big = torch.nonzero(~small).view(-1)
        if big.numel() == 0:
            return start[owner_s] + off_s, owner_s
        pick = _floyd(n[big], k, self.generator)  # (B, k)
        pos_b = (start[big].unsqueeze(1) + pick).view(-1)
        owner_b = big.repeat_interleave(k)
        return torch.cat([start[owner_s] + off_s, pos_b]), torch.cat([owner_s, owner_b])


class _NodeSet:
    """The sampled nodes of one type, deduplicated per subgraph (``(batch, node)`` in disjoint mode).

    Keeps a sorted key array for ``searchsorted`` lookups; local indices are assigned in order of
    arrival, seeds first, then hop by hop.
    """

    def __init__(self, num_nodes: int, disjoint: bool, num_hops: int, device: torch.device) -> None:
        self.n, self.disjoint = max(num_nodes, 1), disjoint
        self.per_hop = [0] * (num_hops + 1)  # nodes added by the seeds (0) and by each hop
        self.keys = torch.empty(0, dtype=torch.long, device=device)  # sorted
        self.locs = torch.empty(0, dtype=torch.long, device=device)  # local id of each sorted key
        self.chunks_node: List[Tensor] = []
        self.chunks_batch: List[Tensor] = []
        self.count = 0

    def _key(self, node: Tensor, batch: Tensor) -> Tensor:
        return batch * self.n + node if self.disjoint else node

    def add_seeds(self, node: Tensor, batch: Tensor) -> Tensor:
        key = self._key(node, batch)
        loc = torch.arange(self.count, self.count + key.numel(), device=key.device)
        self.per_hop[0] += key.numel()
        self._merge(key, loc, node, batch)
        return loc

    def add(self, node: Tensor, batch: Tensor, hop: int) -> Tuple[Tensor, Tuple[Tensor, Tensor, Tensor]]:
        """Local ids of ``node`` (adding unseen ones); also the new ``(node, batch, local)``."""
        key = self._key(node, batch)
        if self.keys.numel():
            pos = torch.searchsorted(self.keys, key).clamp(max=self.keys.numel() - 1)
            found = self.keys[pos] == key
        else:
            pos = torch.zeros_like(key)
            found = torch.zeros_like(key, dtype=torch.bool)
        new_key = torch.unique(key[~found])  # sorted
        new_loc = torch.arange(self.count, self.count + new_key.numel(), device=key.device)
        loc = torch.empty_like(key)
        loc[found] = self.locs[pos[found]]
        loc[~found] = new_loc[torch.searchsorted(new_key, key[~found])]
        if self.disjoint:
            new_node, new_batch = new_key % self.n, torch.div(new_key, self.n, rounding_mode="floor")
        else:
            new_node = new_key
            new_batch = torch.zeros_like(new_key)
        self.per_hop[hop + 1] += new_key.numel()
        self._merge(new_key, new_loc, new_node, new_batch)
        return loc, (new_node, new_batch, new_loc)

    def _merge(self, key: Tensor, loc: Tensor, node: Tensor, batch: Tensor) -> None:
        keys = torch.cat([self.keys, key])
        order = torch.argsort(keys)
        self.keys, self.locs = keys[order], torch.cat([self.locs, loc])[order]
        self.chunks_node.append(node)
        self.chunks_batch.append(batch)
        self.count += key.numel()

    def nodes(self) -> Tensor:
        return torch.cat(self.chunks_node) if self.chunks_node else self.keys.new_empty(0)

    def batches(self) -> Tensor:
        return torch.cat(self.chunks_batch) if self.chunks_batch else self.keys.new_empty(0)


def _shift_node_time(inputs: NodeSamplerInput) -> NodeSamplerInput:
    if inputs.time is None:
        return inputs
    return NodeSamplerInput(inputs.input_id, inputs.node, _strictly_before(inputs.time), inputs.input_type)


def _shift_edge_time(inputs: EdgeSamplerInput) -> EdgeSamplerInput:
    if inputs.time is None:
        return inputs
    return EdgeSamplerInput(inputs.input_id, inputs.row, inputs.col, inputs.label,
                            _strictly_before(inputs.time), inputs.input_type)


def _strictly_before(t: Tensor) -> Tensor:
    """pyg-lib keeps ``edge_time <= seed_time``; the largest value below ``t`` makes it strict."""
    if t.is_floating_point():
        return torch.nextafter(t, torch.full_like(t, float("-inf")))
    return t - 1
