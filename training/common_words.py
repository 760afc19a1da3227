"""Rebuild ``dbt_project/seeds/common_words.csv``: English words that are everyday
words, not names, counted in the CC BY 4.0 training sets (wikigold, btc, wnut17).

A word is listed when it appears at least twice written in lowercase outside any
entity and more often so than as part of an entity. The transform uses the list for
one rule: a person named by a single common word ("Terminal", "Daughter"), with no
full name of that person in the same article, is not a person (a capitalised word
at the start of a sentence or in a title-case headline).

    uv run python training/common_words.py
"""

from __future__ import annotations

import csv
from collections import Counter

from common import DEFAULT_DATA, HERE

SETS = ("wikigold/*.txt", "btc/*.conll", "wnut17/*.conll")
SEED = HERE.parent / "dbt_project" / "seeds" / "common_words.csv"
MIN_LOWERCASE = 2


def main() -> None:
    lowercase: Counter[str] = Counter()
    in_entities: Counter[str] = Counter()
    for pattern in SETS:
        for path in sorted((DEFAULT_DATA / "train").glob(pattern)):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                columns = line.split()
                if len(columns) < 2 or not columns[0].isalpha():
                    continue
                word, tag = columns[0], columns[-1]
                if tag != "O":
                    in_entities[word.lower()] += 1
                elif word.islower():
                    lowercase[word] += 1
    words = sorted(
        word
        for word, n in lowercase.items()
        if n >= MIN_LOWERCASE and n > in_entities[word] and len(word) > 1
    )
    with SEED.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["word"])
        writer.writerows([w] for w in words)
    print(f"{len(words):,} words -> {SEED}")


if __name__ == "__main__":
    main()
