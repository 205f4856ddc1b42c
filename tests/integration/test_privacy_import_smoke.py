"""The import benchmark at 1,000 rows: the whole CLI -> API -> store path works at volume.

(Re-import idempotency is tested in test_privacy_import.py and test_privacy_cli.py.)
"""

import random
from pathlib import Path

from benchmarks.import_contacts import numbers, run, write_csv


def test_a_thousand_row_import(tmp_path: Path) -> None:
    result = run(1000, tmp_path, reimport=False)
    assert result["imported"] == 990  # every 100th row lacks the promotional evidence
    assert result["refused"] == 10
    assert result["rows_per_second"] > 0


def test_generated_rows_are_distinct_valid_numbers(tmp_path: Path) -> None:
    generated = numbers(500, random.Random(1))
    assert len(set(generated)) == 500
    source = tmp_path / "c.csv"
    write_csv(source, 20)
    assert len(source.read_text(encoding="utf-8").splitlines()) == 21
