"""Time-aware graph attention (TGAT-style): the edge's age is encoded into keys and values.

Xu et al., "Inductive Representation Learning on Temporal Graphs", ICLR 2020
(https://arxiv.org/abs/2002.07962). The worked example of plugging in a new graph layer: a plain
``MessagePassing`` subclass that declares its capability flags, so models can use it without
knowing its name.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax


class TimeEncoder(nn.Module):
    r"""Functional time encoding :math:`\phi(\Delta t) = \cos(\omega \Delta t + b)`.

    :math:`\omega` starts as a geometric ladder of frequencies ``10**-linspace(0, 4, dim)`` per
    ``time_scale`` seconds (periods from about 6 time units to about 60,000), so both
    short gaps and months-old edges are distinguishable from the start.

    Args:
        dim: output width.
        time_scale: seconds per time unit (default one hour).
        learnable: learn ``omega`` and ``b`` (TGAT) or keep them fixed (GraphMixer).

    Shapes:
        input ``(*)`` seconds, output ``(*, dim)``.
    """

    def __init__(self, dim: int, time_scale: float = 3600.0, learnable: bool = True) -> None:
        super().__init__()
        self.dim, self.time_scale = dim, time_scale
        self.omega = nn.Parameter(torch.empty(dim), requires_grad=learnable)
        self.bias = nn.Parameter(torch.empty(dim), requires_grad=learnable)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.omega.copy_(10.0 ** -torch.linspace(0, 4, self.dim))
            self.bias.zero_()

    def forward(self, dt: Tensor) -> Tensor:
        t = (dt.float() / self.time_scale).unsqueeze(-1)  # (*, 1)
        return torch.cos(t * self.omega + self.bias)      # (*, dim)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.dim}, time_scale={self.time_scale})"


class TimeAttentionConv(MessagePassing):
    r"""Multi-head graph attention whose keys and values carry the edge's age.

    For a destination node :math:`i` at query time :math:`t_i` and an edge :math:`j \to i`
    created at :math:`t_{ij}` (age :math:`\Delta_{ij} = t_i - t_{ij}`, clamped at 0):

    .. math::
        q_i = W_q [x_i \,\|\, \phi(0)], \quad
        k_{ij} = W_k [x_j \,\|\, \phi(\Delta_{ij}) \,\|\, e_{ij}], \quad
        v_{ij} = W_v [x_j \,\|\, \phi(\Delta_{ij}) \,\|\, e_{ij}]

        \alpha_{ij} = \mathrm{softmax}_{j \in \mathcal{N}(i)}
            \left(q_i^\top k_{ij} / \sqrt{d_h}\right) \text{ (per head)}, \qquad
        x_i' = W_o \big\Vert_{h} \sum_{j} \alpha^h_{ij} v^h_{ij} + W_r x_i

    with :math:`\phi` the :class:`TimeEncoder` and :math:`e_{ij}` optional edge features.

    Args:
        in_channels: input width, or ``(src, dst)`` widths for a bipartite relation.
        out_channels: output width (split over ``heads``; must be divisible by it).
        heads: attention heads.
        time_dim: width of the time encoding.
        edge_dim: width of ``edge_attr`` (``None``: no edge features).
        dropout: dropout on the attention weights.
        time_scale: seconds per time unit of the encoding.

    Shapes:
        - x: ``(|V|, F_in)`` or ``((|V_s|, F_s), (|V_d|, F_d))``
        - edge_index: ``(2, |E|)``
        - edge_time: ``(|E|,)`` int/float seconds, or ``None`` (all ages 0)
        - query_time: ``(|V_d|,)``, a scalar, or ``None`` (the newest edge time: a snapshot's end)
        - edge_attr: ``(|E|, edge_dim)`` or ``None``
        - output: ``(|V_d|, out_channels)``; with ``return_attention_weights=True`` also
          ``(edge_index, alpha (|E|, heads))``
    """

    supports_edge_attr = True
    supports_edge_weight = False
    supports_edge_time = True
    supports_bipartite = True
    returns_attention = True

    def __init__(self, in_channels: int | tuple[int, int], out_channels: int, heads: int = 2,
                 time_dim: int = 16, edge_dim: int | None = None, dropout: float = 0.0,
                 time_scale: float = 3600.0) -> None:
        super().__init__(aggr="add", node_dim=0)
        if out_channels % heads:
            raise ValueError(f"out_channels={out_channels} must be divisible by heads={heads}")
        src, dst = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.time_dim, self.edge_dim, self.dropout = time_dim, edge_dim, dropout
        self.time_enc = TimeEncoder(time_dim, time_scale)
        self.lin_q = nn.Linear(dst + time_dim, out_channels)
        # W_k [x_j || phi || e] = W_kx x_j + W_ke [phi || e]: the node part is projected once per
        # node, not once per edge (same function, a fraction of the edge-wise work)
        self.lin_kx = nn.Linear(src, out_channels)
        self.lin_vx = nn.Linear(src, out_channels)
        self.lin_ke = nn.Linear(time_dim + (edge_dim or 0), out_channels, bias=False)
        self.lin_ve = nn.Linear(time_dim + (edge_dim or 0), out_channels, bias=False)
        self.lin_out = nn.Linear(out_channels, out_channels)
        self.lin_root = nn.Linear(dst, out_channels, bias=False)
        self._alpha: Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.time_enc.reset_parameters()
        for lin in (self.lin_q, self.lin_kx, self.lin_vx, self.lin_ke, self.lin_ve, self.lin_out, self.lin_root):
            lin.reset_parameters()

    def forward(self, x: Tensor | tuple[Tensor, Tensor], edge_index: Tensor, edge_time: Tensor | None = None,
                query_time: Tensor | float | None = None, edge_attr: Tensor | None = None,
                return_attention_weights: bool = False):
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        n_dst = x_dst.size(0)
        if edge_time is None:
            age = x_src.new_zeros(edge_index.size(1))                           # (E,)
        else:
            edge_time = edge_time.to(torch.float64)                             # seconds overflow float32 precision
            if query_time is None:
                query_time = edge_time.max() if edge_time.numel() else 0.0
            qt = torch.as_tensor(query_time, dtype=torch.float64, device=edge_index.device)
            qt = qt[edge_index[1]] if qt.dim() > 0 else qt                        # (E,) or ()
            age = (qt - edge_time).clamp(min=0).float()                          # (E,)
        H, C = self.heads, self.out_channels // self.heads
        phi0 = self.time_enc(x_dst.new_zeros(n_dst))                            # (V_d, time_dim)
        q = self.lin_q(torch.cat([x_dst, phi0], -1)).view(n_dst, H, C)           # (V_d, H, C)
        k, v = self.lin_kx(x_src).view(-1, H, C), self.lin_vx(x_src).view(-1, H, C)  # (V_s, H, C)
        out = self.propagate(edge_index, k=k, v=v, q=q, age=age, edge_attr=edge_attr,
                             size=(x_src.size(0), n_dst))                        # (V_d, H, C)
        out = self.lin_out(out.reshape(n_dst, H * C)) + self.lin_root(x_dst)      # (V_d, out)
        alpha, self._alpha = self._alpha, None
        if return_attention_weights:
            return out, (edge_index, alpha)
        return out

    def message(self, k_j: Tensor, v_j: Tensor, q_i: Tensor, age: Tensor, edge_attr: Tensor | None,
                index: Tensor, ptr: Tensor | None, size_i: int | None) -> Tensor:
        parts = [self.time_enc(age)]
        if self.edge_dim is not None:
            if edge_attr is None:
                raise ValueError(f"{self.__class__.__name__} was built with edge_dim={self.edge_dim}; "
                                 "pass edge_attr")
            parts.append(edge_attr.view(-1, self.edge_dim).to(k_j.dtype))
        e = torch.cat(parts, -1)                                                 # (E, time_dim + edge_dim)
        H, C = self.heads, self.out_channels // self.heads
        k = k_j + self.lin_ke(e).view(-1, H, C)                                  # (E, H, C)
        v = v_j + self.lin_ve(e).view(-1, H, C)                                  # (E, H, C)
        alpha = (q_i * k).sum(-1) / math.sqrt(C)                                 # (E, H)
        alpha = softmax(alpha, index, ptr, size_i)
        self._alpha = alpha
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        return v * alpha.unsqueeze(-1)                                           # (E, H, C)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, heads={self.heads}, "
                f"time_dim={self.time_dim}, edge_dim={self.edge_dim})")
