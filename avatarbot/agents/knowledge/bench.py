"""`avatarbot bench knowledge`: search latency over an agent's knowledge base (default 1 000
passages, English and Chinese), p50/p95/p99 per language; a table, and JSON like `bench pipeline`.

Everything heavy is imported inside the command, so `avatarbot --help` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

GOAL_P99_MS = 20.0


def bench_knowledge(
    chunks: int = typer.Option(1000, help="Passages to index."),
    queries: int = typer.Option(500, help="Searches to time (half English, half Chinese)."),
    database_url: str = typer.Option(
        "", help="Database to bench (default: a temporary SQLite file)."
    ),
    out_dir: Path = typer.Option(Path("bench-results"), help="Where the JSON goes."),
    seed: int = typer.Option(7, help="Random seed for the synthetic documents and queries."),
) -> None:
    """Index synthetic documents, then time search_knowledge queries (goal: p99 < 20 ms)."""
    import asyncio
    import tempfile

    with tempfile.TemporaryDirectory(prefix="avatarbot-bench-kb-") as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        result = asyncio.run(_run(url, chunks=chunks, queries=queries, seed=seed))
    typer.echo(
        f"{'lang':>4} {'queries':>7} {'hit %':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7}"
    )
    for row in result["rows"]:
        typer.echo(
            f"{row['language']:>4} {row['queries']:>7} {row['hit_rate'] * 100:>6.1f} "
            f"{row['p50_ms']:>7.2f} {row['p95_ms']:>7.2f} {row['p99_ms']:>7.2f} "
            f"{row['max_ms']:>7.2f}"
        )
    meta = result["meta"]
    typer.echo(
        f"{meta['chunks']} passages in {meta['documents']} documents on {meta['database']}, "
        f"indexed in {meta['index_s']:.1f} s; goal p99 < {GOAL_P99_MS:.0f} ms: "
        + ("met" if meta["goal_met"] else "NOT met")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"knowledge-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    typer.echo(f"wrote {path}")


async def _run(url: str, *, chunks: int, queries: int, seed: int) -> dict[str, Any]:
    import asyncio
    import os
    import platform
    import random

    from avatarbot.agents.knowledge.store import KnowledgeBase
    from avatarbot.config import KnowledgeSettings
    from avatarbot.storage import migrate
    from avatarbot.storage.db import Database
    from avatarbot.storage.models import Agent

    rng = random.Random(seed)
    en_words = [_word(rng) for _ in range(3000)]
    zh_chars = [chr(rng.randint(0x4E00, 0x62FF)) for _ in range(1500)]
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    settings = KnowledgeSettings(max_chunks_per_document=100_000)
    kb = KnowledgeBase(db, settings)
    try:
        async with db.session() as session:
            agent = Agent(name=f"bench-{seed}-{rng.randrange(10**9)}", capabilities=["knowledge"])
            session.add(agent)
            await session.commit()
        started, indexed, documents = time.perf_counter(), 0, 0
        zh_texts: list[str] = []
        per_doc = 100
        while indexed < chunks:
            n = min(per_doc, chunks - indexed)
            zh = documents % 2 == 1
            body = _document(rng, zh_chars if zh else en_words, n, settings.chunk_chars, zh=zh)
            if zh:
                zh_texts.append(body.replace("。", "").replace("\n", ""))
            info, _ = await kb.add_document(
                agent_id=agent.id, filename=f"doc-{documents:03d}.txt", data=body.encode()
            )
            indexed += info.chunk_count
            documents += 1
        index_s = time.perf_counter() - started
        rows = []
        for language in ("en", "zh"):
            timings: list[float] = []
            hits = 0
            for i in range(queries // 2 + 20):
                if language == "en":
                    query = " ".join(rng.sample(en_words, rng.randint(1, 3)))
                else:  # 2-4 characters that occur in a document, as a user would type
                    source = rng.choice(zh_texts)
                    at = rng.randrange(len(source) - 4)
                    query = source[at : at + rng.randint(2, 4)]
                t0 = time.perf_counter()
                found = await kb.search(agent_id=agent.id, query=query, limit=5)
                elapsed = (time.perf_counter() - t0) * 1000
                if i >= 20:  # the first searches warm caches and connections
                    timings.append(elapsed)
                    hits += bool(found)
            rows.append(_stats(language, timings, hits))
    finally:
        await db.dispose()
    p99 = max(r["p99_ms"] for r in rows)
    meta = {
        "chunks": indexed,
        "documents": documents,
        "database": db.dialect,
        "index_s": round(index_s, 2),
        "goal_p99_ms": GOAL_P99_MS,
        "goal_met": p99 < GOAL_P99_MS,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    return {"meta": meta, "rows": rows}


def _word(rng: Any) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))


def _document(rng: Any, vocab: list[str], passages: int, size: int, *, zh: bool) -> str:
    """About `passages` passages of `size` characters: sentences of random vocabulary."""
    out: list[str] = []
    total, target = 0, passages * size * 0.85
    while total < target:
        words = rng.sample(vocab, rng.randint(6, 14))
        sentence = ("".join(words) + "。") if zh else (" ".join(words).capitalize() + ". ")
        out.append(sentence)
        total += len(sentence)
        if rng.random() < 0.1:
            out.append("\n\n")
    return "".join(out)


def _stats(language: str, timings: list[float], hits: int) -> dict[str, Any]:
    ordered = sorted(timings)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)

    return {
        "language": language,
        "queries": len(ordered),
        "hit_rate": round(hits / max(len(ordered), 1), 3),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1], 3),
        "mean_ms": round(sum(ordered) / len(ordered), 3),
    }


def register(bench_app: typer.Typer) -> None:
    """Add `bench knowledge` next to `bench pipeline`."""
    bench_app.command("knowledge")(bench_knowledge)
