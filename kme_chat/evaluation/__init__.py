"""The evaluation and benchmark harness, apart from the product core: it measures the product from
outside (conversations, chains, dialogues), scores editors on the benchmarks (metrics, datasets),
and writes the report and the benchmarks. The core never imports it (the CLI, which runs both, imports it
lazily)."""
