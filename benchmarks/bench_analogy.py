"""Analogy evaluation: batched ``interp.directions`` against gensim's ``evaluate_word_analogies``.

    OMP_NUM_THREADS=1 python benchmarks/bench_analogy.py [--per-section N] [--threads 1]

Both score the Google analogy set (3CosAdd, default restrict_vocab and case_insensitive)
on the same vectors: the all-MiniLM-L6-v2 token embeddings, loaded into a gensim
``KeyedVectors`` for the peer. Prints wall-clock seconds of each (process CPU time too),
checks that the correct/scored counts agree in every section, and prints the speed-up
gensim / ours. Both run on ``--threads`` BLAS/torch threads.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-section", type=int, default=None, help="first N questions per section (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    from gensim.models import KeyedVectors

    from interp.directions import analogy_accuracy, evaluate_analogies, gensim_test_data, load_analogy_questions
    from models.pretrained import minilm_embeddings

    torch.set_num_threads(args.threads)
    W, vocab = minilm_embeddings()
    questions = load_analogy_questions()
    path = gensim_test_data("questions-words.txt")
    folder = tempfile.TemporaryDirectory()
    if args.per_section is not None:
        questions = questions.groupby("section", sort=False).head(args.per_section)
        path = Path(folder.name) / "questions.txt"
        lines = []
        for section, part in questions.groupby("section", sort=False):
            lines += [f": {section}", *(" ".join(r) for r in part[["a", "b", "c", "expected"]].itertuples(index=False))]
        path.write_text("\n".join(lines) + "\n")
    kv = KeyedVectors(W.shape[1])
    kv.add_vectors(vocab, W.numpy())
    kv.fill_norms()

    wall, cpu = time.perf_counter(), time.process_time()
    ours = analogy_accuracy(evaluate_analogies(W, vocab, questions)).set_index("section")
    ours_wall, ours_cpu = time.perf_counter() - wall, time.process_time() - cpu

    wall, cpu = time.perf_counter(), time.process_time()
    _, sections = kv.evaluate_word_analogies(path)
    gensim_wall, gensim_cpu = time.perf_counter() - wall, time.process_time() - cpu

    mismatches = []
    for s in sections:
        name = "total" if s["section"] == "Total accuracy" else s["section"]
        theirs = (len(s["correct"]), len(s["correct"]) + len(s["incorrect"]))
        mine = (int(ours.loc[name, "n_correct"]), int(ours.loc[name, "n_counted"]))
        if theirs != mine:
            mismatches.append(f"{name}: gensim {theirs} ours {mine}")
    total = ours.loc["total"]
    print(f"questions: {len(questions)}, scored: {total.n_counted}, accuracy {total.accuracy:.4f}")
    print(f"sections agree with gensim: {not mismatches} {mismatches if mismatches else ''}")
    print(f"ours   : {ours_wall:8.2f} s wall, {ours_cpu:8.2f} s CPU")
    print(f"gensim : {gensim_wall:8.2f} s wall, {gensim_cpu:8.2f} s CPU")
    print(f"speed-up (gensim / ours): {gensim_wall / ours_wall:.1f}x wall, {gensim_cpu / ours_cpu:.1f}x CPU")


if __name__ == "__main__":
    main()
