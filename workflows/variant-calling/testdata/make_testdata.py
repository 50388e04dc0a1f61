"""Make the variant-calling workflow's test data, deterministically (writes beside itself):
a random 5 kb reference, and for each sample reads simulated from the reference with that
sample's known homozygous SNPs (error-free, ~30x). s1 and s2 are paired-end, s3 single-end.

    python workflows/variant-calling/testdata/make_testdata.py

``expected_snps.tsv`` lists every SNP and which samples carry it (genotype 1/1); every other
sample is 0/0 there. ``samples.template.csv`` is the sample sheet with file *names* where the
registered sheet needs file *ids*: upload the FASTQs first, then put their ids in."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
LENGTH = 5000
READ = 100
INSERT = 300
PAIRS = 750
COMPLEMENT = str.maketrans("ACGT", "TGCA")
SNPS = {  # 1-based position -> (alt base, samples carrying it)
    1200: ("G", {"s1", "s2"}),
    2500: ("T", {"s1"}),
    3800: ("C", {"s2", "s3"}),
    4400: ("A", {"s3"}),
}
SAMPLES = {"s1": True, "s2": True, "s3": False}  # paired-end?


def revcomp(seq: str) -> str:
    return seq.translate(COMPLEMENT)[::-1]


def write_gz(path: Path, text: str) -> None:
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text.encode())


def main() -> None:
    rng = random.Random(7)
    ref = [rng.choice("ACGT") for _ in range(LENGTH)]
    for pos, (alt, _) in SNPS.items():  # make sure the reference base differs from the alt
        if ref[pos - 1] == alt:
            ref[pos - 1] = {"A": "C", "C": "G", "G": "T", "T": "A"}[alt]
    reference = "".join(ref)
    (HERE / "reference.fa").write_text(
        ">chrT test chromosome\n"
        + "\n".join(reference[i : i + 60] for i in range(0, LENGTH, 60))
        + "\n"
    )
    expected = ["chrom\tpos\tref\talt\tsamples"]
    for pos, (alt, carriers) in sorted(SNPS.items()):
        expected.append(f"chrT\t{pos}\t{reference[pos - 1]}\t{alt}\t{','.join(sorted(carriers))}")
    (HERE / "expected_snps.tsv").write_text("\n".join(expected) + "\n")

    sheet = ["sample,fastq1,fastq2"]
    for sample, paired in SAMPLES.items():
        genome = list(reference)
        for pos, (alt, carriers) in SNPS.items():
            if sample in carriers:
                genome[pos - 1] = alt
        seq = "".join(genome)
        r1, r2 = [], []
        for i in range(PAIRS):
            start = rng.randrange(0, LENGTH - INSERT)
            fragment = seq[start : start + INSERT]
            if rng.random() < 0.5:
                fragment = revcomp(fragment)
            qual = "I" * READ
            r1.append(f"@{sample}_{i}/1\n{fragment[:READ]}\n+\n{qual}\n")
            r2.append(f"@{sample}_{i}/2\n{revcomp(fragment)[:READ]}\n+\n{qual}\n")
        write_gz(HERE / f"{sample}_R1.fastq.gz", "".join(r1))
        if paired:
            write_gz(HERE / f"{sample}_R2.fastq.gz", "".join(r2))
        sheet.append(f"{sample},{sample}_R1.fastq.gz,{sample + '_R2.fastq.gz' if paired else ''}")
    (HERE / "samples.template.csv").write_text("\n".join(sheet) + "\n")


if __name__ == "__main__":
    main()
