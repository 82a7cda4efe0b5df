"""The one-screen summary each command prints at the end."""

from __future__ import annotations


def print_summary(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    line = "-" * 72
    print(f"\n{line}\n{title}\n{line}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(line)


def format_metrics(metrics: dict[str, float], keys: list[str] | None = None) -> str:
    keys = keys or list(metrics)
    return "  ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)


def metrics_table(metrics: dict[str, float]) -> str:
    width = max(len(k) for k in metrics)
    return "\n".join(f"  {k:<{width}}  {v:.4f}" for k, v in metrics.items())
