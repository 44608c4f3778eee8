"""Jaro-Winkler similarity in Python, for scoring one new record without a round trip to DuckDB or Spark.

It follows the textbook definition that DuckDB's ``jaro_winkler_similarity`` and Splink's Spark UDF implement
(match window ``max(len) // 2 - 1``, prefix up to 4 characters, scaling 0.1), so a pair lands on the same
comparison level in the on-create matcher as in a resolve run.
"""

from __future__ import annotations


def jaro(a: str, b: str) -> float:
    """Jaro similarity in [0, 1]: shared characters within a window, penalised for transpositions."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    window = max(0, max(len(a), len(b)) // 2 - 1)
    taken = [False] * len(b)
    matched_a: list[str] = []
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not taken[j] and b[j] == ch:
                taken[j] = True
                matched_a.append(ch)
                break
    m = len(matched_a)
    if m == 0:
        return 0.0
    matched_b = [b[j] for j in range(len(b)) if taken[j]]
    transpositions = sum(x != y for x, y in zip(matched_a, matched_b, strict=True)) / 2
    return (m / len(a) + m / len(b) + (m - transpositions) / m) / 3


def jaro_winkler(a: str, b: str, scaling: float = 0.1) -> float:
    """Jaro-Winkler similarity: Jaro, raised for a common prefix of up to four characters."""
    sim = jaro(a, b)
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return sim + prefix * scaling * (1 - sim)
