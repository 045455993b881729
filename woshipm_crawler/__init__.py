"""woshipm_crawler: crawl woshipm.com into a clean, deduplicated, incremental JSONL + Markdown dataset."""
