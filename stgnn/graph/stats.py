"""Statistics of a heterogeneous POI graph, and a map of the POIs.

``graph_stats`` counts nodes and edges per type, summarises in/out-degree distributions per edge
type (over *all* nodes of the type, isolated ones included), finds the connected components of
the POI transition and near graphs with networkx, and describes the transition graph
(self-loops, reciprocity, top transitions). ``format_stats`` renders it as a text table.
"""
from __future__ import annotations

import io
import os
from typing import Any, Sequence

import numpy as np
from torch_geometric.data import HeteroData

from stgnn.graph.hetero import NEAR, NEXT
from stgnn.utils.io import atomic_write_bytes

COLOR_BY = ("category", "region")


def _degree_summary(deg: np.ndarray) -> dict[str, float]:
    if not len(deg):
        return {"min": 0, "median": 0.0, "mean": 0.0, "p90": 0.0, "max": 0}
    return {"min": int(deg.min()), "median": float(np.median(deg)), "mean": float(deg.mean()),
            "p90": float(np.percentile(deg, 90)), "max": int(deg.max())}


def _edge_key(et: tuple[str, str, str]) -> str:
    return "__".join(et)


def _components(edge_index: np.ndarray, num_nodes: int, directed: bool) -> dict[str, Any]:
    """Components over all ``num_nodes`` (isolated nodes are singleton components)."""
    import networkx as nx

    g = nx.DiGraph() if directed else nx.Graph()
    g.add_nodes_from(range(num_nodes))
    g.add_edges_from(zip(edge_index[0].tolist(), edge_index[1].tolist()))
    und = g.to_undirected(as_view=True) if directed else g
    sizes = sorted((len(c) for c in nx.connected_components(und)), reverse=True)
    out = {"num_components": len(sizes), "largest": sizes[0] if sizes else 0,
           "isolated": sum(1 for n in und.nodes if und.degree(n) == 0)}
    if directed:
        ssizes = sorted((len(c) for c in nx.strongly_connected_components(g)), reverse=True)
        out["num_strong_components"] = len(ssizes)
        out["largest_strong"] = ssizes[0] if ssizes else 0
        # Reciprocity over distinct non-loop edges: share of a->b whose b->a exists too.
        loops = list(nx.selfloop_edges(g))
        g2 = g.copy()
        g2.remove_edges_from(loops)
        out["reciprocity"] = float(nx.reciprocity(g2)) if g2.number_of_edges() else 0.0
    return out


def graph_stats(data: HeteroData, *, top: int = 10, poi_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Counts, degree summaries, components and transition statistics of ``data``.

    Args:
        data: a graph from :func:`~stgnn.graph.hetero.build_hetero_graph`.
        top: how many of the most frequent transitions to list.
        poi_names: optional ``(P,)`` names for the top-transition list (else integer ids).
    """
    out: dict[str, Any] = {"nodes": {nt: int(data[nt].num_nodes) for nt in data.node_types}, "edges": {},
                           "degree": {}}
    for et in data.edge_types:
        ei = data[et].edge_index.numpy()
        key = _edge_key(et)
        out["edges"][key] = int(ei.shape[1])
        n_src, n_dst = out["nodes"][et[0]], out["nodes"][et[2]]
        out["degree"][key] = {
            "out": _degree_summary(np.bincount(ei[0], minlength=n_src)),
            "in": _degree_summary(np.bincount(ei[1], minlength=n_dst)),
        }

    P = out["nodes"].get("poi", 0)
    if NEXT in data.edge_types:
        ei = data[NEXT].edge_index.numpy()
        cnt = data[NEXT]["count"].numpy() if "count" in data[NEXT] else np.ones(ei.shape[1], dtype=np.int64)
        loop = ei[0] == ei[1]
        order = np.argsort(-cnt, kind="stable")[:top]
        name = (lambda i: str(poi_names[i])) if poi_names is not None else (lambda i: int(i))
        out["transitions"] = {
            "distinct_pairs": int(ei.shape[1]),
            "total": int(cnt.sum()),
            "self_loop_pairs": int(loop.sum()),
            "self_loop_share": float(cnt[loop].sum() / max(cnt.sum(), 1)),
            "top": [{"src": name(ei[0, i]), "dst": name(ei[1, i]), "count": int(cnt[i])} for i in order],
            **_components(ei, P, directed=True),
        }
    if NEAR in data.edge_types:
        out["near"] = _components(data[NEAR].edge_index.numpy(), P, directed=False)
    return out


def format_stats(stats: dict[str, Any]) -> str:
    """A plain-text table of :func:`graph_stats`' output."""
    lines = ["node type      count"]
    lines += [f"{nt:<14} {n:>8,}" for nt, n in stats["nodes"].items()]
    lines += ["", f"{'edge type':<34} {'edges':>9}  {'in-deg min/med/mean/p90/max':<32} out-deg min/med/mean/p90/max"]
    for key, n in stats["edges"].items():
        d = stats["degree"][key]
        fmt = lambda s: f"{s['min']}/{s['median']:g}/{s['mean']:.2f}/{s['p90']:g}/{s['max']}"  # noqa: E731
        lines.append(f"{key:<34} {n:>9,}  {fmt(d['in']):<32} {fmt(d['out'])}")
    if "transitions" in stats:
        t = stats["transitions"]
        lines += ["", f"transitions: {t['total']:,} over {t['distinct_pairs']:,} distinct pairs; "
                      f"self-loop pairs {t['self_loop_pairs']:,} ({100 * t['self_loop_share']:.1f}% of transitions); "
                      f"reciprocity {t['reciprocity']:.3f}",
                  f"  weakly connected components {t['num_components']:,} (largest {t['largest']:,}, "
                  f"isolated POIs {t['isolated']:,}); strongly connected {t['num_strong_components']:,} "
                  f"(largest {t['largest_strong']:,})",
                  "  top transitions: " + ", ".join(f"{x['src']}->{x['dst']} ({x['count']})" for x in t["top"])]
    if "near" in stats:
        n = stats["near"]
        lines.append(f"near graph: {n['num_components']:,} components (largest {n['largest']:,}, "
                     f"isolated {n['isolated']:,})")
    return "\n".join(lines)


def plot_pois(split, path: str | os.PathLike, color_by: str = "category", *, region_cell_km: float = 1.0,
              top_categories: int = 12, dpi: int = 120) -> None:
    """Write a PNG map of the split's POIs, coloured by category (top ones) or grid region.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend change) and
    writes the file atomically.
    """
    import geopandas as gpd
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if color_by not in COLOR_BY:
        raise ValueError(f"color_by={color_by!r}; choose one of {COLOR_BY}")
    lat, lon = np.asarray(split.poi_lat, np.float64), np.asarray(split.poi_lon, np.float64)
    ok = np.isfinite(lat) & np.isfinite(lon)
    gdf = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon[ok], lat[ok]), crs="EPSG:4326")
    fig = Figure(figsize=(8, 8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if color_by == "category":
        cat = np.asarray(split.poi_category)[ok]
        names = np.asarray(split.category_names, dtype=object)
        counts = np.bincount(cat, minlength=len(names))
        keep = np.argsort(-counts, kind="stable")[:top_categories]
        label = np.where(np.isin(cat, keep), names[cat].astype(str), "other")
        gdf["label"] = label
        if (label == "other").any():
            gdf[gdf.label == "other"].plot(ax=ax, color="lightgrey", markersize=2)
        gdf[gdf.label != "other"].plot(ax=ax, column="label", categorical=True, markersize=3, legend=True,
                                       legend_kwds={"fontsize": 6, "loc": "upper left"}, cmap="tab20")
        ax.set_title(f"{split.name}: {int(ok.sum()):,} POIs by category (top {top_categories})")
    else:
        from stgnn.features.space import grid_regions

        gdf["region"] = grid_regions(lat[ok], lon[ok], region_cell_km).region
        gdf.plot(ax=ax, column="region", cmap="tab20", markersize=3)
        ax.set_title(f"{split.name}: {int(ok.sum()):,} POIs, {gdf['region'].nunique():,} regions of {region_cell_km:g} km")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
