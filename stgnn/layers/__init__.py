"""Pluggable graph layers: resolve a name, a class or a dotted path to a ``MessagePassing`` class.

Models never construct a fixed conv: they receive a layer (``resolve("gat")``, a class, or
``"pkg.module.Class"``), read its :class:`LayerCaps` and build it through :func:`init_conv`.
Branches are on capability flags, never on names:

* ``supports_edge_attr``: ``forward(..., edge_attr=...)`` takes per-edge features.
* ``supports_edge_weight``: ``forward(..., edge_weight=...)`` takes a scalar per edge.
* ``supports_edge_time``: ``forward(..., edge_time=..., query_time=...)`` (our time-aware layers).
* ``supports_bipartite``: accepts ``(x_src, x_dst)`` pairs, so it can carry a relation between two
  node types inside :class:`torch_geometric.nn.HeteroConv`.
* ``returns_attention``: ``forward(..., return_attention_weights=True)`` returns attention weights.

A layer of our own declares these as class attributes. For any other class (PyG's convs, a
user's own) they are derived by inspection: the parameters of ``forward`` and the annotation of
``in_channels`` in ``__init__`` (``Union[int, Tuple[int, int]]`` means bipartite). A class
attribute always wins over inspection, so an outside layer can state its flags itself.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from torch import nn

from stgnn.layers.time_attention import TimeAttentionConv

# short name -> (module, class name); PyG classes are imported lazily on first use.
_NAMES: dict[str, tuple[str, str]] = {
    "sage": ("torch_geometric.nn", "SAGEConv"),
    "gat": ("torch_geometric.nn", "GATConv"),
    "gatv2": ("torch_geometric.nn", "GATv2Conv"),
    "transformer": ("torch_geometric.nn", "TransformerConv"),
    "gcn": ("torch_geometric.nn", "GCNConv"),
    "graph": ("torch_geometric.nn", "GraphConv"),
    "cheb": ("torch_geometric.nn", "ChebConv"),
    "gen": ("torch_geometric.nn", "GENConv"),
    "general": ("torch_geometric.nn", "GeneralConv"),
    "le": ("torch_geometric.nn", "LEConv"),
    "resgated": ("torch_geometric.nn", "ResGatedGraphConv"),
    "mf": ("torch_geometric.nn", "MFConv"),
    "time_attention": ("stgnn.layers.time_attention", "TimeAttentionConv"),
}

# constructor defaults a layer needs to work as a drop-in ``conv(in, out)`` (applied only when the
# class's __init__ takes the argument): ChebConv has a required K.
_REQUIRED_DEFAULTS: dict[str, Any] = {"K": 2}

_FLAGS = ("supports_edge_attr", "supports_edge_weight", "supports_edge_time", "supports_bipartite",
          "returns_attention")


@dataclass(frozen=True)
class LayerCaps:
    """What a layer class can take; see the module docstring."""

    supports_edge_attr: bool = False
    supports_edge_weight: bool = False
    supports_edge_time: bool = False
    supports_bipartite: bool = False
    returns_attention: bool = False


def available() -> list[str]:
    """The short names :func:`resolve` accepts."""
    return sorted(_NAMES)


def resolve(layer: str | type) -> type:
    """Return the layer class for a short name, a class (passed through) or ``"pkg.mod.Class"``.

    Raises:
        ValueError: an unknown name, with the list of valid ones.
        ImportError: a dotted path whose module or attribute does not exist.
        TypeError: the result is not an ``nn.Module`` subclass.
    """
    if isinstance(layer, type):
        cls = layer
    elif isinstance(layer, str):
        key = layer.strip().lower()
        if key in _NAMES:
            mod, name = _NAMES[key]
            cls = getattr(importlib.import_module(mod), name)
        elif "." in layer:
            mod, _, name = layer.rpartition(".")
            try:
                cls = getattr(importlib.import_module(mod), name)
            except (ImportError, AttributeError) as e:
                raise ImportError(f"layer {layer!r}: cannot import {name!r} from {mod!r} ({e}); "
                                  f"give a short name ({', '.join(available())}), a class, "
                                  f"or an importable 'pkg.module.Class'") from e
        else:
            raise ValueError(f"unknown layer {layer!r}; valid names: {', '.join(available())}; "
                             f"or pass a class or a dotted path 'pkg.module.Class'")
    else:
        raise TypeError(f"layer must be a name, a class or a dotted path, got {type(layer).__name__}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"layer {layer!r} resolved to {cls!r}, which is not an nn.Module subclass")
    return cls


def capabilities(layer: str | type) -> LayerCaps:
    """Capability flags of a layer: class attributes when declared, else derived by inspection."""
    cls = resolve(layer)
    fwd = inspect.signature(cls.forward).parameters
    init = inspect.signature(cls.__init__).parameters
    in_ann = str(init["in_channels"].annotation) if "in_channels" in init else ""
    derived = {
        "supports_edge_attr": "edge_attr" in fwd,
        "supports_edge_weight": "edge_weight" in fwd,
        "supports_edge_time": "edge_time" in fwd,
        "supports_bipartite": "Tuple" in in_ann or "tuple" in in_ann,
        "returns_attention": "return_attention_weights" in fwd,
    }
    return LayerCaps(**{k: bool(getattr(cls, k, derived[k])) for k in _FLAGS})


def init_conv(layer: str | type, in_channels: int | tuple[int, int], out_channels: int, *,
              edge_dim: int | None = None, **kwargs: Any) -> nn.Module:
    """Build ``layer(in_channels, out_channels, ...)`` with the arguments the class accepts.

    The hook that makes layers interchangeable: ``edge_dim`` is passed only to layers that take
    it; bipartite inputs (a tuple ``in_channels``) turn ``add_self_loops`` off where the layer has
    it (self-loops are undefined between two node types); multi-head layers average their heads
    (``concat=False``) so the output is ``out_channels`` wide whatever the layer. ``kwargs`` the
    class does not accept are dropped, so one config can serve every layer.
    """
    cls = resolve(layer)
    params = inspect.signature(cls.__init__).parameters
    kw: dict[str, Any] = {k: v for k, v in _REQUIRED_DEFAULTS.items() if k in params}
    if isinstance(in_channels, tuple) and "add_self_loops" in params:
        kw["add_self_loops"] = False
    if "concat" in params and "heads" in params:
        kw["concat"] = False
    if edge_dim is not None and "edge_dim" in params:
        kw["edge_dim"] = edge_dim
    kw.update({k: v for k, v in kwargs.items() if k in params})
    return cls(in_channels, out_channels, **kw)


__all__ = ["LayerCaps", "TimeAttentionConv", "available", "capabilities", "init_conv", "resolve"]
