"""Make the blast workflow's test data, deterministically (run from anywhere; writes beside
itself): two random reference sequences, queries cut out of them at known places (one
reverse-complemented) plus one that matches nothing, and a small protein set for blastp.

    python workflows/blast/testdata/make_testdata.py

``expected_hits.tsv`` lists what ``blastn`` must report for them: 100 % identity over the
whole query, at the coordinates it was cut from."""

from __future__ import annotations

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPLEMENT = str.maketrans("ACGT", "TGCA")
AMINO = "ACDEFGHIKLMNPQRSTVWY"


def wrap(seq: str, width: int = 70) -> str:
    return "\n".join(seq[i : i + width] for i in range(0, len(seq), width))


def fasta(records: list[tuple[str, str]]) -> str:
    return "".join(f">{name}\n{wrap(seq)}\n" for name, seq in records)


def main() -> None:
    rng = random.Random(20261201)
    refs = [(f"chr{i}", "".join(rng.choice("ACGT") for _ in range(3000))) for i in (1, 2)]
    ref = dict(refs)
    cuts = [  # (query, chrom, start 1-based, end, reverse)
        ("q1", "chr1", 101, 400, False),
        ("q2", "chr2", 1501, 1750, False),
        ("q3", "chr1", 2201, 2400, True),
    ]
    queries: list[tuple[str, str]] = []
    expected = ["query\tsubject\tpident\tlength\tqstart\tqend\tsstart\tsend"]
    for name, chrom, start, end, reverse in cuts:
        seq = ref[chrom][start - 1 : end]
        if reverse:
            seq = seq.translate(COMPLEMENT)[::-1]
        queries.append((name, seq))
        length = end - start + 1
        sstart, send = (end, start) if reverse else (start, end)
        expected.append(f"{name}\t{chrom}\t100.000\t{length}\t1\t{length}\t{sstart}\t{send}")
    queries.append(("q4_nohit", "".join(rng.choice("ACGT") for _ in range(200))))
    (HERE / "reference.fa").write_text(fasta(refs))
    (HERE / "queries.fa").write_text(fasta(queries))
    (HERE / "expected_hits.tsv").write_text("\n".join(expected) + "\n")

    proteins = [(f"prot{i}", "".join(rng.choice(AMINO) for _ in range(300))) for i in (1, 2)]
    (HERE / "proteins.fa").write_text(fasta(proteins))
    (HERE / "protein_queries.fa").write_text(fasta([("p1", proteins[1][1][50:170])]))


if __name__ == "__main__":
    main()
