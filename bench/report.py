"""Results: the JSON document, the markdown tables, the targets verdict and the PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

LATENCY_WORKLOADS = ("W1", "W2", "W3", "W6")
WORKLOAD_NAMES = {
    "W1": "append one message",
    "W2": "last 50 messages",
    "W3": "20 recent conversations (of 500)",
    "W4": "append 10,000 in batches of 100",
    "W5": "8 writers × 500 appends",
    "W6": "pending tasks by tag",
}


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return round(a / b, 2)


def add_ratios(run: dict[str, Any]) -> None:
    """Library (and HTTP) against the raw bound, p50 and p99; throughput for W4 and W5."""
    lib, raw = run.get("library", {}), run.get("raw", {})
    ratios: dict[str, Any] = {}
    for name in lib:
        lw, rw = lib[name], raw.get(name)
        if not isinstance(lw, dict) or not isinstance(rw, dict):
            continue
        ratios[name] = {
            "p50": _ratio(lw["p50_ms"], rw["p50_ms"]),
            "p99": _ratio(lw["p99_ms"], rw["p99_ms"]),
            "throughput": _ratio(lw.get("items_per_s"), rw.get("items_per_s")),
        }
    run["ratios"] = ratios


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def markdown(doc: dict[str, Any]) -> str:
    lines = ["# convstore benchmark results", ""]
    meta = doc["meta"]
    lines += [
        f"Run {meta['started']} on {meta['machine']}; Python {meta['python']}, "
        f"{meta['versions']}. Ratios compare figures of the same run.",
        "",
    ]
    for run in doc["runs"]:
        lines += _run_table(run)
    if doc.get("targets"):
        lines += ["## Targets", "", "| Target | Backend | Figure | Bound | Ratio | Verdict |"]
        lines += ["|---|---|---|---|---|---|"]
        for t in doc["targets"]:
            verdict = "pass" if t["pass"] else ("miss" if t["pass"] is False else "n/a")
            lines.append(
                f"| {t['target']} | {t['backend']} | {t['figure']} | {t['bound']} | "
                f"{_fmt(t.get('ratio'))} | {verdict} |"
            )
        lines.append("")
    return "\n".join(lines)


def _run_table(run: dict[str, Any]) -> list[str]:
    load = run.get("load") or {}
    lines = [
        f"## {run['backend']}, {run['size_label']} messages",
        "",
        f"Load: {_fmt(load.get('messages'))} messages in {_fmt(load.get('seconds'))} s "
        f"({_fmt(load.get('rows_per_second'))} msg/s), loader peak RSS "
        f"{_fmt(load.get('peak_rss_mb'), 1)} MiB"
        + (" (reused)" if load.get("reused") else "")
        + ".",
        "",
        "| Workload | raw p50 / p99 ms | library p50 / p99 ms | ratio p50 (p99) | "
        "HTTP c1 p50 / p99 ms | HTTP c16 req/s |",
        "|---|---|---|---|---|---|",
    ]
    http = run.get("http") or {}
    for name in ("W1", "W2", "W3", "W4", "W5", "W6"):
        raw, lib = run["raw"].get(name), run["library"].get(name)
        if raw is None or lib is None:
            continue
        r = run["ratios"].get(name, {})
        h = http.get(name) or {}
        c1 = h.get("c1") or {}
        cn = next((v for k, v in h.items() if k.startswith("c") and k != "c1"), {})
        if name in ("W4", "W5"):
            lib_cell = f"{_fmt(lib['items_per_s'], 0)} msg/s"
            raw_cell = f"{_fmt(raw['items_per_s'], 0)} msg/s"
            ratio = f"{_fmt(r.get('throughput'))} of raw throughput"
            if name == "W5":
                ok = lib["check"]["ok"] and raw["check"]["ok"]
                ratio += "; check " + ("ok" if ok else "FAILED")
        else:
            lib_cell = f"{_fmt(lib['p50_ms'], 3)} / {_fmt(lib['p99_ms'], 3)}"
            raw_cell = f"{_fmt(raw['p50_ms'], 3)} / {_fmt(raw['p99_ms'], 3)}"
            ratio = f"{_fmt(r.get('p50'))} ({_fmt(r.get('p99'))})"
        http_c1 = f"{_fmt(c1.get('p50_ms'), 3)} / {_fmt(c1.get('p99_ms'), 3)}" if c1 else "–"
        if name == "W5" and h:
            http_cn = (
                f"{_fmt(h.get('items_per_s'), 0)} (check {'ok' if h['check']['ok'] else 'FAILED'})"
            )
        else:
            http_cn = _fmt(cn.get("ops_per_s"), 0) if cn else "–"
        lines.append(
            f"| {name} {WORKLOAD_NAMES[name]} | {raw_cell} | {lib_cell} | {ratio} | "
            f"{http_c1} | {http_cn} |"
        )
    if http.get("server_rss_mb"):
        rss = http["server_rss_mb"]
        after = rss.get("peak_after_logins")
        during = f" ({_fmt(after, 1)} MiB after the logins)" if after is not None else ""
        lines += ["", f"Server peak RSS: {_fmt(rss['peak'], 1)} MiB{during}."]
    lines.append("")
    return lines


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, judged on this run's figures."""
    out: list[dict[str, Any]] = []
    by_backend: dict[str, list[dict[str, Any]]] = {}
    for run in doc["runs"]:
        by_backend.setdefault(run["backend"], []).append(run)
    for backend, runs in by_backend.items():
        runs.sort(key=lambda r: r["size"])
        for run in runs:
            label = f"{run['size_label']}"
            for name, bound in (("W1", 1.3), ("W2", 2.0), ("W3", 2.0)):
                ratio = run["ratios"].get(name, {}).get("p50")
                out.append(
                    _target(
                        f"{name} library ≤ {bound}× raw (p50), {label}",
                        backend,
                        f"{run['library'][name]['p50_ms']:.3f} ms",
                        f"{run['raw'][name]['p50_ms']:.3f} ms",
                        ratio,
                        None if ratio is None else ratio <= bound,
                    )
                )
            ratio = run["ratios"].get("W4", {}).get("throughput")
            out.append(
                _target(
                    f"W4 library ≥ 50% of raw throughput, {label}",
                    backend,
                    f"{run['library']['W4']['items_per_s']:,.0f} msg/s",
                    f"{run['raw']['W4']['items_per_s']:,.0f} msg/s",
                    ratio,
                    None if ratio is None else ratio >= 0.5,
                )
            )
            out += _http_targets(backend, run)
        if len(runs) > 1:
            small, big = runs[0], runs[-1]
            for name in ("W2", "W3"):
                a, b = small["library"][name]["p50_ms"], big["library"][name]["p50_ms"]
                ratio = _ratio(b, a)
                out.append(
                    _target(
                        f"{name} p50 at {big['size_label']} ≤ 1.5× at {small['size_label']}",
                        backend,
                        f"{b:.3f} ms",
                        f"{a:.3f} ms",
                        ratio,
                        None if ratio is None else ratio <= 1.5,
                    )
                )
            out.append(_loader_target(backend, runs[-1]))
    return out


LOADER_GROWTH_MIB = 64.0
"""The loader streams fixed-size chunks: its memory may grow by a constant, never with N."""


def _loader_target(backend: str, run: dict[str, Any]) -> dict[str, Any]:
    load = run["load"]
    growth = (load.get("rss_last_mb") or 0.0) - (load.get("rss_first_mb") or 0.0)
    return _target(
        f"loader memory flat at {run['size_label']} (RSS growth from first to last chunk)",
        backend,
        f"+{growth:.0f} MiB (peak {load['peak_rss_mb']:.0f} MiB)",
        f"+{LOADER_GROWTH_MIB:.0f} MiB",
        None,
        growth <= LOADER_GROWTH_MIB,
    )


def _http_targets(backend: str, run: dict[str, Any]) -> list[dict[str, Any]]:
    http = run.get("http")
    if not http:
        return []
    label = run["size_label"]
    lib = run["library"]["W2"]["p50_ms"]
    c1 = http["W2"]["c1"]["p50_ms"]
    cn_key = next(k for k in http["W2"] if k != "c1")
    rps = http["W2"][cn_key]["ops_per_s"]
    peak = http["server_rss_mb"]["peak"]
    after = http["server_rss_mb"].get("peak_after_logins")
    rss_figure = f"{peak:.0f} MiB" + (f" ({after:.0f} after the logins)" if after else "")
    return [
        _target(
            f"W2 HTTP c1 adds ≤ 1 ms p50, {label}",
            backend,
            f"{c1:.3f} ms (+{c1 - lib:.3f})",
            f"{lib:.3f} ms + 1",
            None,
            c1 - lib <= 1.0,
        ),
        _target(
            f"W2 HTTP ≥ 1,000 req/s at {cn_key}, {label}",
            backend,
            f"{rps:,.0f} req/s",
            "1,000 req/s",
            _ratio(rps, 1000.0),
            rps >= 1000,
        ),
        _target(
            f"server RSS < 200 MB, {label}",
            backend,
            rss_figure,
            "200 MB (190.7 MiB)",
            _ratio(peak, 190.7),
            peak < 190.7,
        ),
    ]


def _target(
    name: str, backend: str, figure: str, bound: str, ratio: float | None, ok: bool | None
) -> dict[str, Any]:
    return {
        "target": name,
        "backend": backend,
        "figure": figure,
        "bound": bound,
        "ratio": ratio,
        "pass": ok,
    }


def write(doc: dict[str, Any], out: Path) -> list[Path]:
    """results.json, results.md and (when matplotlib is installed) the plots."""
    out.mkdir(parents=True, exist_ok=True)
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
    backends = sorted({r["backend"] for r in doc["runs"]})
    for backend in backends:
        runs = sorted((r for r in doc["runs"] if r["backend"] == backend), key=lambda r: r["size"])
        fig, axes = plt.subplots(1, len(LATENCY_WORKLOADS), figsize=(16, 4), squeeze=False)
        for ax, name in zip(axes[0], LATENCY_WORKLOADS, strict=True):
            sizes = [r["size"] for r in runs]
            for kind, style in (("raw", "k--"), ("library", "b-o")):
                ax.plot(sizes, [r[kind][name]["p50_ms"] for r in runs], style, label=f"{kind} p50")
            if all(r.get("http") for r in runs):
                ax.plot(
                    sizes, [r["http"][name]["c1"]["p50_ms"] for r in runs], "r-s", label="HTTP p50"
                )
            ax.set_xscale("log")
            ax.set_ylim(bottom=0)
            ax.set_title(f"{name}: {WORKLOAD_NAMES[name]}", fontsize=9)
            ax.set_xlabel("messages in the store")
            ax.set_ylabel("ms")
            ax.grid(True, alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.suptitle(f"convstore on {backend}: p50 latency against dataset size")
        fig.tight_layout()
        path = out / f"latency_vs_size_{backend}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
        written.append(_bars(plt, backend, runs[-1], out))
    return written


def _bars(plt: Any, backend: str, run: dict[str, Any], out: Path) -> Path:
    names = list(LATENCY_WORKLOADS)
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.27
    kinds = [("raw", "0.5"), ("library", "tab:blue")]
    if run.get("http"):
        kinds.append(("http", "tab:red"))
    for k, (kind, color) in enumerate(kinds):
        values = [
            (run[kind][n]["c1"]["p50_ms"] if kind == "http" else run[kind][n]["p50_ms"])
            for n in names
        ]
        ax.bar(
            [i + (k - 1) * width for i in range(len(names))], values, width, label=kind, color=color
        )
    ax.set_xticks(range(len(names)), [f"{n}\n{WORKLOAD_NAMES[n]}" for n in names], fontsize=7)
    ax.set_ylabel("p50 ms")
    ax.set_title(f"{backend}, {run['size_label']} messages: raw driver vs library vs HTTP")
    ax.legend()
    fig.tight_layout()
    path = out / f"raw_library_http_{backend}_{run['size_label']}.png"
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
