"""A small local MCP server (stdio) that turns a sales CSV into a weekly report.

    python examples/mcp/sales_report_server.py --csv examples/mcp/sales.csv

CSV columns: date (YYYY-MM-DD), region, product, units, revenue. Tools:
- weekly_report(week="latest", language="en"): revenue, units, change against the week
  before, best product and region, written to be read aloud (a video report);
- list_weeks(): the ISO weeks the file covers.
Give it to an agent as {"name": "sales", "transport": "stdio", "command": "<python>",
"args": ["examples/mcp/sales_report_server.py", "--csv", "<file>"]}; the agent calls
sales__weekly_report. It reads the file on every call, so new rows show up at once.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
from collections import defaultdict
from pathlib import Path

from mcp.server.fastmcp import FastMCP


def iso_week(day: str) -> str:
    year, week, _ = dt.date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


def load(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["week"] = iso_week(row["date"])
    return rows


def totals(rows: list[dict[str, str]], key: str) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for row in rows:
        sums[row[key]] += float(row["revenue"])
    return sums


def report(rows: list[dict[str, str]], week: str, language: str) -> str:
    weeks = sorted({r["week"] for r in rows})
    if not weeks:
        raise ValueError("the sales file has no rows")
    week = weeks[-1] if week == "latest" else week
    if week not in weeks:
        raise ValueError(f"no sales in week {week}; the file covers {weeks[0]} to {weeks[-1]}")
    this = [r for r in rows if r["week"] == week]
    before = (
        [r for r in rows if r["week"] == weeks[weeks.index(week) - 1]] if weeks.index(week) else []
    )
    revenue = sum(float(r["revenue"]) for r in this)
    units = sum(int(r["units"]) for r in this)
    product, product_revenue = max(totals(this, "product").items(), key=lambda kv: kv[1])
    region, _ = max(totals(this, "region").items(), key=lambda kv: kv[1])
    change = ""
    if before:
        previous = sum(float(r["revenue"]) for r in before)
        pct = (revenue - previous) / previous * 100 if previous else 0.0
        change = f"{pct:+.0f}%"
    if language == "zh":
        text = f"{week} 周报：销售额 {revenue:,.0f} 元，售出 {units} 件"
        text += f"，比上周{change}。" if change else "。"
        return text + f"卖得最好的是{product}（{product_revenue:,.0f} 元），{region}区域业绩最佳。"
    text = f"Weekly report for {week}: revenue {revenue:,.0f} yuan from {units} units"
    text += f", {change} on the week before." if change else "."
    return text + f" Best seller: {product} ({product_revenue:,.0f} yuan). Best region: {region}."


def build(csv_path: Path) -> FastMCP:
    server = FastMCP("sales")

    @server.tool()
    def weekly_report(week: str = "latest", language: str = "en") -> str:
        """The sales report of one ISO week ("2026-W48", or "latest"); language "en" or "zh"."""
        return report(load(csv_path), week, language)

    @server.tool()
    def list_weeks() -> list[str]:
        """The ISO weeks that have sales data."""
        return sorted({r["week"] for r in load(csv_path)})

    return server


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=Path(__file__).with_name("sales.csv"))
    build(parser.parse_args().csv.resolve()).run("stdio")
