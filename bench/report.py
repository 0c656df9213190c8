"""Results: the JSON document, the markdown tables, the targets verdict and the PNG plots.

Every comparison is within one run (one backend and size): convstore against the best peer
(the best figure among the peers that support the workload, named) and against the raw bound
(the faster raw driver, named).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

LATENCY = ("W1", "W2", "W3", "W6", "W1L", "W2L")
THROUGHPUT = ("W4", "W5", "load")
WORKLOADS = (*LATENCY, *THROUGHPUT)
WORKLOAD_NAMES = {
    "W1": "append one message",
    "W2": "last 50 messages",
    "W3": "20 recent conversations (of 500)",
    "W6": "pending tasks by tag",
    "W1L": "append to the long conversation",
    "W2L": "last 50 of the long conversation",
    "W4": "batch append, 100 per call",
    "W5": "8 concurrent writers",
    "load": "bulk load of the dataset",
}
RAW_TARGETS = {
    "postgresql": {"W1": 1.5, "W2": 2.5, "W3": 2.5},
    "sqlite": {"W1": 2.0, "W2": 4.0, "W3": 6.0},
}
"""convstore's p50 at most this many times the raw bound's."""
BATCH_OF_RAW = 0.5
HTTP_RPS_OF_BARE = 0.75
HTTP_P50_OVER_BARE_MS = 0.5
SERVER_RSS_MB = 150
MIB_PER_MB = 1e6 / 2**20
LOADER_GROWTH_MIB = 64.0
"""The loader streams fixed-size chunks: its memory may grow by a constant, never with N."""


def lower_is_better(workload: str) -> bool:
    return workload in LATENCY


def figure(entry: dict[str, Any] | None, workload: str) -> float | None:
    """The p50 (ms) of a latency workload, the messages/s of a throughput one; ``None`` when
    the implementation did not do it (or its W5 check failed)."""
    if not entry:
        return None
    w = (entry.get("workloads") or {}).get(workload)
    if not isinstance(w, dict):
        return None
    if workload == "W5" and not (w.get("check") or {}).get("ok"):
        return None
    value = w.get("p50_ms") if lower_is_better(workload) else w.get("items_per_s")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def best(run: dict[str, Any], kind: str, workload: str) -> tuple[str, float] | None:
    """The best implementation of ``kind`` on ``workload``: (name, figure)."""
    found = [
        (name, value)
        for name, entry in (run.get("implementations") or {}).items()
        if entry.get("kind") == kind and (value := figure(entry, workload)) is not None
    ]
    if not found:
        return None
    pick = min if lower_is_better(workload) else max
    return pick(found, key=lambda nv: nv[1])


def convstore_figure(run: dict[str, Any], workload: str) -> float | None:
    return figure((run.get("implementations") or {}).get("convstore"), workload)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return round(a / b, 2)


def comparison(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per workload: convstore, the best peer, the raw bound, and the two ratios."""
    out: dict[str, dict[str, Any]] = {}
    for w in WORKLOADS:
        mine = convstore_figure(run, w)
        peer = best(run, "peer", w)
        raw = best(run, "raw", w)
        out[w] = {
            "convstore": mine,
            "best_peer": peer[0] if peer else None,
            "best_peer_figure": peer[1] if peer else None,
            "raw": raw[0] if raw else None,
            "raw_figure": raw[1] if raw else None,
            "vs_best_peer": _ratio(mine, peer[1]) if peer else None,
            "vs_raw": _ratio(mine, raw[1]) if raw else None,
        }
    return out


# --- targets ------------------------------------------------------------------------------


def _target(
    name: str,
    backend: str,
    label: str,
    value: float | None,
    bound: float | None,
    at_most: bool,
    shown: tuple[str, str],
) -> dict[str, Any]:
    """``value`` ≤ ``bound`` (``at_most``) or ≥; the margin is signed, in % of the bound
    (positive: headroom, negative: missed by)."""
    ok: bool | None = None
    margin: float | None = None
    if value is not None and bound is not None and bound:
        ok = value <= bound if at_most else value >= bound
        margin = round(((bound - value) if at_most else (value - bound)) / abs(bound) * 100, 1)
    return {
        "target": name,
        "backend": backend,
        "size": label,
        "figure": shown[0],
        "bound": shown[1],
        "margin_pct": margin,
        "pass": ok,
    }


def _fig(workload: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f} ms" if lower_is_better(workload) else f"{value:,.0f} msg/s"


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, judged on each run's figures."""
    out: list[dict[str, Any]] = []
    by_backend: dict[str, list[dict[str, Any]]] = {}
    for run in doc["runs"]:
        by_backend.setdefault(run["backend"], []).append(run)
        out += _run_targets(run)
    for backend, runs in by_backend.items():
        runs.sort(key=lambda r: r["size"])
        if len(runs) > 1:
            small, big = runs[0], runs[-1]
            for w in ("W2", "W3"):
                a, b = convstore_figure(small, w), convstore_figure(big, w)
                bound = a * 1.5 if a is not None else None
                out.append(
                    _target(
                        f"{w} p50 at {big['size_label']} ≤ 1.5× at {small['size_label']}",
                        backend,
                        big["size_label"],
                        b,
                        bound,
                        True,
                        (_fig(w, b), _fig(w, bound)),
                    )
                )
    return out


def _run_targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    backend, label = run["backend"], run["size_label"]
    out: list[dict[str, Any]] = []
    cmp = comparison(run)
    for w in WORKLOADS:
        c = cmp[w]
        if c["best_peer"] is None or c["convstore"] is None:
            continue
        at_most = lower_is_better(w)
        relation = "p50 ≤" if at_most else "throughput ≥"
        out.append(
            _target(
                f"{w} {relation} best peer's ({c['best_peer']})",
                backend,
                label,
                c["convstore"],
                c["best_peer_figure"],
                at_most,
                (_fig(w, c["convstore"]), _fig(w, c["best_peer_figure"])),
            )
        )
    for w, times in RAW_TARGETS.get(backend, {}).items():
        c = cmp[w]
        bound = c["raw_figure"] * times if c["raw_figure"] is not None else None
        out.append(
            _target(
                f"{w} p50 ≤ {times}× raw ({c['raw']})",
                backend,
                label,
                c["convstore"],
                bound,
                True,
                (_fig(w, c["convstore"]), f"{times} × {_fig(w, c['raw_figure'])}"),
            )
        )
    c = cmp["W4"]
    bound = c["raw_figure"] * BATCH_OF_RAW if c["raw_figure"] is not None else None
    out.append(
        _target(
            f"W4 batch ≥ {BATCH_OF_RAW} of raw ({c['raw']})",
            backend,
            label,
            c["convstore"],
            bound,
            False,
            (_fig("W4", c["convstore"]), f"{BATCH_OF_RAW} × {_fig('W4', c['raw_figure'])}"),
        )
    )
    out += _check_targets(run)
    out += _http_targets(run)
    out.append(_loader_target(run))
    out += _bulk_memory_target(run)
    return out


def _bulk_memory_target(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The read-back stream feeding every bulk load holds one conversation at a time."""
    growths = {
        name: (w["load"].get("rss_last_mb") or 0.0) - (w["load"].get("rss_first_mb") or 0.0)
        for name, e in (run.get("implementations") or {}).items()
        if isinstance((w := e.get("workloads") or {}).get("load"), dict)
        and "rss_first_mb" in w["load"]
    }
    if not growths:
        return []
    worst = max(growths, key=lambda n: growths[n])
    return [
        _target(
            "bulk loads' memory flat (largest RSS growth over one load)",
            run["backend"],
            run["size_label"],
            growths[worst],
            LOADER_GROWTH_MIB,
            True,
            (f"+{growths[worst]:.0f} MiB ({worst})", f"+{LOADER_GROWTH_MIB:.0f} MiB"),
        )
    ]


def _check_targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The W5 check: convstore's (library and HTTP) is the target; the other implementations'
    outcome is listed beside it (an error is a failure), without a verdict."""
    outcomes: dict[str, str | None] = {}
    for name, entry in (run.get("implementations") or {}).items():
        w5 = (entry.get("workloads") or {}).get("W5")
        if not isinstance(w5, dict) or "unsupported" in w5:
            continue
        if "error" in w5:
            outcomes[name] = w5["error"].splitlines()[0][:80]
        else:
            outcomes[name] = None if w5["check"].get("ok") else "check failed"
    for name, r in ((run.get("http") or {}).get("W5") or {}).items():
        outcomes[f"HTTP {name}"] = None if r["check"]["ok"] else "check failed"
    mine = {k: v for k, v in outcomes.items() if k in ("convstore", "HTTP convstore")}
    others = {k: v for k, v in outcomes.items() if k not in mine}

    def row(target: str, group: dict[str, str | None], judged: bool) -> dict[str, Any]:
        failed = [f"{k}: {v}" for k, v in group.items() if v]
        return {
            "target": target,
            "backend": run["backend"],
            "size": run["size_label"],
            "figure": f"{len(group) - len(failed)} of {len(group)} ok"
            + (f" (failed: {'; '.join(failed)})" if failed else ""),
            "bound": "all",
            "margin_pct": None,
            "pass": (not failed) if judged and group else None,
        }

    return [
        row(
            "W5: every message once, in order per writer (convstore, library and HTTP)", mine, True
        ),
        row("W5 on the raw bounds, the peers and the bare app (for the record)", others, False),
    ]


def _http_targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    http = run.get("http") or {}
    routes = http.get("routes")
    backend, label = run["backend"], run["size_label"]
    out: list[dict[str, Any]] = []
    if routes:
        for route, servers in routes.items():
            mine, bare = servers.get("convstore", {}), servers.get("bare", {})
            if _errors(mine) or _errors(bare):
                out.append(
                    {
                        "target": f"HTTP {route}: every request answered 2xx",
                        "backend": backend,
                        "size": label,
                        "figure": f"convstore {_errors(mine)}, bare {_errors(bare)} errors",
                        "bound": "0",
                        "margin_pct": None,
                        "pass": False,
                    }
                )
                continue
            cn = next((k for k in mine if k != "c1"), None)
            if cn:
                a, b = mine[cn]["req_per_s"], bare.get(cn, {}).get("req_per_s")
                bound = b * HTTP_RPS_OF_BARE if b else None
                out.append(
                    _target(
                        f"HTTP {route} at {cn}: req/s ≥ {HTTP_RPS_OF_BARE}× bare app's",
                        backend,
                        label,
                        a,
                        bound,
                        False,
                        (f"{a:,.0f} req/s", f"{HTTP_RPS_OF_BARE} × {b:,.0f} req/s"),
                    )
                )
            if "c1" in mine and "c1" in bare:
                a, b = mine["c1"]["p50_ms"], bare["c1"]["p50_ms"]
                out.append(
                    _target(
                        f"HTTP {route} at c1: p50 ≤ bare app's + {HTTP_P50_OVER_BARE_MS} ms",
                        backend,
                        label,
                        a,
                        b + HTTP_P50_OVER_BARE_MS,
                        True,
                        (f"{a:.3f} ms", f"{b:.3f} + {HTTP_P50_OVER_BARE_MS} ms"),
                    )
                )
    rss = (http.get("server_rss_mb") or {}).get("convstore")
    if rss:
        during = rss.get("peak_workloads") or rss["peak"]
        bound = SERVER_RSS_MB * MIB_PER_MB
        out.append(
            _target(
                f"server RSS ≤ {SERVER_RSS_MB} MB through the HTTP workloads",
                backend,
                label,
                during,
                bound,
                True,
                (
                    f"{during:.0f} MiB (peak with the logins {rss['peak']:.0f})",
                    f"{SERVER_RSS_MB} MB ({bound:.1f} MiB)",
                ),
            )
        )
    return out


def _errors(figures: dict[str, Any]) -> int:
    """Non-2xx answers and socket errors over a server's wrk runs of one route."""
    return sum(int(f.get("non_2xx", 0)) + int(f.get("socket_errors", 0)) for f in figures.values())


def _loader_target(run: dict[str, Any]) -> dict[str, Any]:
    load = run["load"]
    growth = (load.get("rss_last_mb") or 0.0) - (load.get("rss_first_mb") or 0.0)
    return _target(
        "loader memory flat (RSS growth from first to last chunk)",
        run["backend"],
        run["size_label"],
        growth,
        LOADER_GROWTH_MIB,
        True,
        (
            f"+{growth:.0f} MiB (peak {load['peak_rss_mb']:.0f} MiB)",
            f"+{LOADER_GROWTH_MIB:.0f} MiB",
        ),
    )


# --- markdown -----------------------------------------------------------------------------


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def _cell(entry: dict[str, Any], w: str) -> str:
    value = (entry.get("workloads") or {}).get(w)
    if not isinstance(value, dict):
        return "–"
    if "unsupported" in value:
        return "unsupported"
    if "shared" in value:
        return "(shares the sync variant's store)"
    if "error" in value:
        return "error"
    if lower_is_better(w):
        return f"{value['p50_ms']:.3f}"
    text = f"{value['items_per_s']:,.0f}"
    if w == "W5":
        text += " ✓" if value["check"]["ok"] else " ✗ check failed"
    return text


def markdown(doc: dict[str, Any]) -> str:
    meta = doc["meta"]
    lines = [
        "# convstore benchmark results",
        "",
        f"Run {meta['started']} on {meta['machine']}; Python {meta['python']}, "
        f"{meta['versions']}. Ratios compare figures of the same run; latency figures are "
        "p50 in ms (lower is better), throughput figures messages/s (higher is better).",
        "",
    ]
    for run in doc["runs"]:
        lines += _run_section(run)
    if doc.get("targets"):
        lines += _targets_table(doc["targets"])
    return "\n".join(lines)


def _targets_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["## Targets", "", "| Target | Backend | Size | Figure | Bound | Margin | Verdict |"]
    lines.append("|---|---|---|---|---|---|---|")
    for t in rows:
        verdict = {True: "pass", False: "**miss**", None: "n/a"}[t["pass"]]
        margin = "–" if t["margin_pct"] is None else f"{t['margin_pct']:+.1f} %"
        lines.append(
            f"| {t['target']} | {t['backend']} | {t['size']} | {t['figure']} | {t['bound']} | "
            f"{margin} | {verdict} |"
        )
    lines += [
        "",
        "Margin: how far the figure is from the bound, in % of the bound (positive: headroom, "
        "negative: missed by).",
        "",
    ]
    return lines


def summary_table(run: dict[str, Any]) -> list[str]:
    lines = [
        "| Workload | convstore | best peer | convstore / best peer | raw bound | "
        "convstore / raw |",
        "|---|---|---|---|---|---|",
    ]
    for w, c in comparison(run).items():
        peer = f"{_fig(w, c['best_peer_figure'])} ({c['best_peer']})" if c["best_peer"] else "–"
        raw = f"{_fig(w, c['raw_figure'])} ({c['raw']})" if c["raw"] else "–"
        lines.append(
            f"| {w} {WORKLOAD_NAMES[w]} | {_fig(w, c['convstore'])} | {peer} | "
            f"{_fmt(c['vs_best_peer'])} | {raw} | {_fmt(c['vs_raw'])} |"
        )
    return lines


def implementations_table(run: dict[str, Any]) -> list[str]:
    header = " | ".join(f"{w} {'p50 ms' if lower_is_better(w) else 'msg/s'}" for w in WORKLOADS)
    lines = [f"| Implementation | {header} |", "|---|" + "---|" * len(WORKLOADS)]
    for name, entry in (run.get("implementations") or {}).items():
        if entry["status"] != "ok":
            lines.append(f"| {name} | {entry['status']} |" + " |" * (len(WORKLOADS) - 1))
            continue
        cells = " | ".join(_cell(entry, w) for w in WORKLOADS)
        lines.append(f"| {name} | {cells} |")
    return lines


def _run_section(run: dict[str, Any]) -> list[str]:
    load = run.get("load") or {}
    lines = [
        f"## {run['backend']}, {run['size_label']} messages",
        "",
        f"convstore's dataset: {_fmt(load.get('messages'))} messages loaded in "
        f"{_fmt(load.get('seconds'))} s ({_fmt(load.get('rows_per_second'))} msg/s, "
        "COPY / executemany), loader peak RSS "
        f"{_fmt(load.get('peak_rss_mb'), 1)} MiB"
        + (" (reused)" if load.get("reused") else "")
        + ". Every other store holds the same conversations.",
        "",
        "### convstore against the best peer and the raw bound",
        "",
        *summary_table(run),
        "",
        "### Every implementation",
        "",
        *implementations_table(run),
        "",
    ]
    lines += _reasons(run)
    lines += _versions(run)
    lines += _http_section(run)
    return lines


def _reasons(run: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, entry in (run.get("implementations") or {}).items():
        for w, value in (entry.get("workloads") or {}).items():
            if isinstance(value, dict) and ("unsupported" in value or "error" in value):
                kind = "unsupported" if "unsupported" in value else "error"
                lines.append(f"- {name}, {w}: {kind}: {value.get(kind)}")
    for miss in run.get("not_installed") or []:
        lines.append(f"- {miss['peer']} ({miss['distribution']}): {miss['status']}")
    out = ["Unsupported, failed and missing:", "", *lines, ""] if lines else []
    peers = [n for n, e in (run.get("implementations") or {}).items() if e["kind"] == "peer"]
    failed = [n for n, e in (run.get("implementations") or {}).items() if e["status"] != "ok"]
    missing = run.get("not_installed") or []
    status = (
        f"Peers: {len(peers)} implementations ran"
        + (f", {len(failed)} failed ({', '.join(failed)})" if failed else "")
        + (
            f"; not installed: {', '.join(m['distribution'] for m in missing)}."
            if missing
            else "; every peer package is installed."
        )
    )
    return [*out, status, ""]


def _versions(run: dict[str, Any]) -> list[str]:
    lines = ["| Implementation | Versions | Set-up |", "|---|---|---|"]
    for name, entry in (run.get("implementations") or {}).items():
        versions = ", ".join(f"{k} {v}" for k, v in (entry.get("versions") or {}).items())
        lines.append(f"| {name} | {versions} | {entry.get('setup', '')} |")
    return [*lines, ""]


def _http_section(run: dict[str, Any]) -> list[str]:
    http = run.get("http")
    if not http:
        return []
    lines = [
        "### HTTP: `convstore serve` against the bare app (wrk)",
        "",
        f"Each measurement {http['seconds']} s; CPU pinning: {http['pinning']}.",
        "",
    ]
    if http.get("wrk"):
        lines += [f"wrk {http['wrk']}: no request rates.", ""]
    routes = http.get("routes") or {}
    if routes:
        lines += [
            "| Route | convstore req/s | bare req/s | ratio | convstore c1 p50 | "
            "bare c1 p50 | difference |",
            "|---|---|---|---|---|---|---|",
        ]
        for route, servers in routes.items():
            mine, bare = servers["convstore"], servers["bare"]
            cn = next(k for k in mine if k != "c1")
            a, b = mine[cn]["req_per_s"], bare[cn]["req_per_s"]
            p, q = mine["c1"]["p50_ms"], bare["c1"]["p50_ms"]
            errors = _errors(mine) + _errors(bare)
            note = f" ({errors} errors)" if errors else ""
            lines.append(
                f"| {route} ({cn}){note} | {a:,.0f} | {b:,.0f} | {_fmt(_ratio(a, b))} | "
                f"{p:.3f} ms | {q:.3f} ms | {p - q:+.3f} ms |"
            )
        lines.append("")
    rss = http.get("server_rss_mb") or {}
    for name, r in rss.items():
        during = r.get("peak_workloads")
        lines.append(
            f"- {name} server RSS: peak {_fmt(r['peak'], 1)} MiB"
            + (f", {_fmt(during, 1)} MiB through the workloads" if during else "")
        )
    for name, r in (http.get("W5") or {}).items():
        ok = "ok" if r["check"]["ok"] else "FAILED"
        lines.append(
            f"- W5 over HTTP, {name}: {r['messages']} appends by 8 clients, "
            f"{_fmt(r['items_per_s'], 0)} msg/s, check {ok}"
        )
    return [*lines, ""]


# --- files --------------------------------------------------------------------------------


def write(doc: dict[str, Any], out: Path) -> list[Path]:
    """results.json, results.md and (when matplotlib is installed) the plots."""
    out.mkdir(parents=True, exist_ok=True)
    for run in doc["runs"]:
        run["comparison"] = comparison(run)
    doc["targets"] = targets(doc)
    written = [out / "results.json", out / "results.md"]
    written[0].write_text(json.dumps(doc, indent=2, default=str) + "\n")
    written[1].write_text(markdown(doc))
    written += plots(doc, out)
    return written


def plots(doc: dict[str, Any], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written: list[Path] = []
    for run in doc["runs"]:
        written.append(_implementations_plot(plt, run, out))
        if (run.get("http") or {}).get("routes"):
            written.append(_http_plot(plt, run, out))
    return written


COLORS = {"convstore": "tab:blue"}


def _implementations_plot(plt: Any, run: dict[str, Any], out: Path) -> Path:
    impls = [
        (name, e) for name, e in (run.get("implementations") or {}).items() if e["status"] == "ok"
    ]
    fig, axes = plt.subplots(1, 2, figsize=(16, 5.5), gridspec_kw={"width_ratios": [2, 1]})
    cmap = plt.get_cmap("tab20")
    for ax, group, unit in ((axes[0], LATENCY, "p50 ms (log)"), (axes[1], THROUGHPUT, "msg/s")):
        width = 0.8 / max(1, len(impls))
        for k, (name, entry) in enumerate(impls):
            xs, ys = [], []
            for i, w in enumerate(group):
                value = figure(entry, w)
                if value is not None:
                    xs.append(i - 0.4 + (k + 0.5) * width)
                    ys.append(value)
            if entry["kind"] == "raw":
                color = "0.2" if k == 0 else "0.55"
            else:
                color = COLORS.get(entry["kind"], cmap((k + 4) % 20))
            ax.bar(xs, ys, width, label=name, color=color, edgecolor="black", linewidth=0.3)
        ax.set_xticks(range(len(group)), [f"{w}\n{WORKLOAD_NAMES[w]}" for w in group], fontsize=7)
        ax.set_ylabel(unit)
        if group is LATENCY:
            ax.set_yscale("log")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(
        f"{run['backend']}, {run['size_label']} messages: convstore, raw bounds and peers "
        "(one run, taking turns)"
    )
    fig.tight_layout()
    path = out / f"peers_{run['backend']}_{run['size_label']}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _http_plot(plt: Any, run: dict[str, Any], out: Path) -> Path:
    routes = run["http"]["routes"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    names = list(routes)
    for ax, key, unit in ((axes[0], "rps", "req/s at c16"), (axes[1], "p50", "p50 ms at c1")):
        for k, server in enumerate(("convstore", "bare")):
            values = []
            for route in names:
                figures = routes[route][server]
                if key == "rps":
                    values.append(next(v for c, v in figures.items() if c != "c1")["req_per_s"])
                else:
                    values.append(figures["c1"]["p50_ms"])
            color = "tab:blue" if server == "convstore" else "0.5"
            ax.bar(
                [i + (k - 0.5) * 0.38 for i in range(len(names))],
                values,
                0.38,
                label=server,
                color=color,
            )
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel(unit)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"HTTP on {run['backend']}, {run['size_label']}: convstore serve vs bare app")
    fig.tight_layout()
    path = out / f"http_{run['backend']}_{run['size_label']}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    """Re-render results, or merge the runs of several results.json into one report
    (later files win for the same backend and size):

        python -m bench.report docs/performance/results.json /tmp/pg/results.json --out DIR
    """
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.report")
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    docs = [json.loads(p.read_text()) for p in args.results]
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    for doc in docs:
        for run in doc["runs"]:
            runs[(run["backend"], run["size"])] = run
    merged = {**docs[-1], "runs": list(runs.values())}
    if len(docs) > 1:
        merged["meta"] = {**docs[-1]["meta"], "merged_from": [d["meta"] for d in docs]}
    write(merged, args.out)


if __name__ == "__main__":
    main()
