"""A graph GRU cell whose gates are graph convolutions of a class the caller chooses.

Seo et al., "Structured Sequence Modeling with Graph Convolutional Recurrent Networks" (GConvGRU),
https://arxiv.org/abs/1612.07659 — there the gates are fixed ``ChebConv``s; here the conv class
is an argument (a name, a class or a dotted path, see :func:`stgnn.layers.resolve`), so one
cell serves every layer instead of one near-copy per conv.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from stgnn.layers import capabilities, init_conv, resolve


class GraphGRUCell(nn.Module):
    r"""GRU over node states where each gate mixes neighbours with ``conv``.

    .. math::
        z &= \sigma(\mathrm{conv}_z([x \,\|\, h], A)), \quad
        r = \sigma(\mathrm{conv}_r([x \,\|\, h], A)) \\
        \tilde h &= \tanh(\mathrm{conv}_h([x \,\|\, r \odot h], A)), \quad
        h' = z \odot h + (1 - z) \odot \tilde h

    Args:
        conv: the layer for the gates (name, class or dotted path).
        in_channels: width of ``x``.
        hidden_channels: width of the state ``h``.
        **conv_kwargs: passed to every gate conv through :func:`stgnn.layers.init_conv`.

    Shapes:
        - x: ``(|V|, in_channels)``; edge_index: ``(2, |E|)``
        - h: ``(|V|, hidden_channels)`` or ``None`` (zeros)
        - edge_weight ``(|E|,)`` / edge_attr ``(|E|, D)`` / edge_time ``(|E|,)``: forwarded only
          to convs whose capability flags say they take them.
        - output: ``(|V|, hidden_channels)``, the new state.
    """

    def __init__(self, conv: str | type, in_channels: int, hidden_channels: int, **conv_kwargs: Any) -> None:
        super().__init__()
        self.conv_cls = resolve(conv)
        self.caps = capabilities(self.conv_cls)
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        width = in_channels + hidden_channels
        self.conv_z = init_conv(self.conv_cls, width, hidden_channels, **conv_kwargs)
        self.conv_r = init_conv(self.conv_cls, width, hidden_channels, **conv_kwargs)
        self.conv_h = init_conv(self.conv_cls, width, hidden_channels, **conv_kwargs)

    def reset_parameters(self) -> None:
        for conv in (self.conv_z, self.conv_r, self.conv_h):
            conv.reset_parameters()

    def _edge_kwargs(self, edge_weight: Tensor | None, edge_attr: Tensor | None,
                     edge_time: Tensor | None) -> dict[str, Tensor]:
        kw: dict[str, Tensor] = {}
        if edge_weight is not None and self.caps.supports_edge_weight:
            kw["edge_weight"] = edge_weight
        if edge_attr is not None and self.caps.supports_edge_attr:
            kw["edge_attr"] = edge_attr
        if edge_time is not None and self.caps.supports_edge_time:
            kw["edge_time"] = edge_time
        return kw

    def forward(self, x: Tensor, edge_index: Tensor, h: Tensor | None = None, edge_weight: Tensor | None = None,
                edge_attr: Tensor | None = None, edge_time: Tensor | None = None) -> Tensor:
        if h is None:
            h = x.new_zeros(x.size(0), self.hidden_channels)                   # (V, hidden)
        kw = self._edge_kwargs(edge_weight, edge_attr, edge_time)
        xh = torch.cat([x, h], -1)                                             # (V, in + hidden)
        z = torch.sigmoid(self.conv_z(xh, edge_index, **kw))                  # (V, hidden)
        r = torch.sigmoid(self.conv_r(xh, edge_index, **kw))                  # (V, hidden)
        h_tilde = torch.tanh(self.conv_h(torch.cat([x, r * h], -1), edge_index, **kw))
        return z * h + (1 - z) * h_tilde                                       # (V, hidden)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.conv_cls.__name__}, {self.in_channels}, "
                f"{self.hidden_channels})")
