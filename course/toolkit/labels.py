"""Label sources for probing that install offline.

- Part of speech from WordNet 3.0 (Debian `wordnet-base`, WordNet 3.0 license): for each whole-word token of a
  zoo model's vocabulary, the part of speech whose senses are most often tagged in SemCor (WordNet's
  `tagsense_cnt`), after a small morphological reduction (exception lists + suffix rules, as WordNet's
  `morphy` does). Closed-class words (determiners, pronouns, prepositions, conjunctions, modals, negation)
  are labelled "function". The result is shipped as `zoo/<name>/pos_lexicon.json`; rebuild it with
  `python -m mechinterp.course.toolkit.labels`.
- Bracket depth: is a token inside (...) on its line.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import torch
from mechinterp.course.toolkit.corpus import fetch_packages
from mechinterp.course.toolkit.zoo.load import zoo_dir
from tokenizers import Tokenizer
from torch import Tensor

POS_CLASSES = ("noun", "verb", "adjective", "adverb", "function")
_WN_FILES = {"noun": "noun", "verb": "verb", "adjective": "adj", "adverb": "adv"}
FUNCTION_WORDS = frozenset("""
a an the this that these those my your his her its our their whose which who whom what
i you he she it we they me him us them myself yourself himself herself itself ourselves themselves thee thou thy
thine ye of in on at by for with from to into onto upon over under about above below across after before against
along among around as between beyond during except through toward towards until unto within without throughout
and or but nor so yet if because although though while whereas unless than whether
not no shall will would should can could may might must do does did neither either both each every any some
""".split())
_SUFFIXES = {
    "noun": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
             ("ies", "y")],
    "verb": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")],
    "adjective": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "adverb": [],
}
WORD_TOKEN = re.compile(r" ([A-Za-z]+)")  # a vocabulary entry that starts a word: space + letters


def read_wordnet(wordnet_dir: Path) -> tuple[dict[str, Counter], dict[str, dict[str, list[str]]]]:
    """SemCor tag counts per lemma and part of speech, and the exception lists (irregular forms)."""
    counts: dict[str, Counter] = {}
    exceptions: dict[str, dict[str, list[str]]] = {}
    for pos, suffix in _WN_FILES.items():
        for line in (wordnet_dir / f"index.{suffix}").read_text(errors="replace").splitlines():
            if line.startswith(" "):  # the license header
                continue
            fields = line.split()
            lemma, n_pointers = fields[0], int(fields[3])
            counts.setdefault(lemma, Counter())[pos] += int(fields[5 + n_pointers])  # tagsense_cnt
        exceptions[pos] = {f[0]: f[1:] for f in map(str.split, (wordnet_dir / f"{suffix}.exc").read_text()
                                                   .splitlines()) if f}
    return counts, exceptions


def part_of_speech(word: str, counts: dict[str, Counter], exceptions: dict[str, dict[str, list[str]]]) -> str | None:
    """The most frequent (SemCor-tagged) part of speech of `word` or its base form; None if never tagged."""
    w = word.lower()
    if w in FUNCTION_WORDS:
        return "function"
    score = {}
    for pos in _WN_FILES:
        bases = {w, *exceptions[pos].get(w, [])}
        bases |= {w[: -len(s)] + r for s, r in _SUFFIXES[pos] if w.endswith(s) and len(w) > len(s) + 1}
        score[pos] = max((counts[b][pos] for b in bases if b in counts), default=0)
    best = max(score, key=score.get)
    return best if score[best] > 0 else None


def build_pos_lexicon(wordnet_dir: Path, vocab: list[str]) -> dict[str, str]:
    """{vocabulary string: part of speech} for every whole-word entry (" word") that WordNet tags."""
    counts, exceptions = read_wordnet(wordnet_dir)
    lexicon = {}
    for s in vocab:
        m = WORD_TOKEN.fullmatch(s)
        if m and (len(m.group(1)) > 1 or m.group(1).lower() in FUNCTION_WORDS):
            pos = part_of_speech(m.group(1), counts, exceptions)
            if pos:
                lexicon[s] = pos
    return lexicon


def load_pos_lexicon(name: str = "text-lm") -> dict[str, str]:
    return json.loads((zoo_dir() / name / "pos_lexicon.json").read_text())


def pos_labels(str_tokens: list[str], lexicon: dict[str, str]) -> Tensor:
    """[n] part-of-speech class index (POS_CLASSES) of each token of a token stream, or -1.

    A token is labelled only when it is a whole word: in the lexicon AND the next token does not continue the
    word (does not start with a letter) — " bibli" + "ophile" is not the word "bibli"."""
    out = torch.full((len(str_tokens),), -1, dtype=torch.long)
    for i, s in enumerate(str_tokens):
        following = str_tokens[i + 1] if i + 1 < len(str_tokens) else " "
        if s in lexicon and not following[:1].isalpha():
            out[i] = POS_CLASSES.index(lexicon[s])
    return out


def bracket_labels(str_tokens: list[str], separator: str = "<|endoftext|>") -> Tensor:
    """[n] 1 if a token is inside round brackets on its line, 0 if not, -1 for tokens containing a bracket
    (they are the boundary, not inside or outside). Depth resets at line ends and documents."""
    out = torch.full((len(str_tokens),), -1, dtype=torch.long)
    depth = 0
    for i, s in enumerate(str_tokens):
        if s == separator:
            depth = 0
        if "(" not in s and ")" not in s:
            out[i] = int(depth > 0)
        depth = max(0, depth + s.count("(") - s.count(")"))
        if "\n" in s:
            depth = 0
    return out


def vocab_strings(tokenizer) -> list[str]:
    """The decoded string of every token id."""
    return [tokenizer.decode([i]) for i in range(len(tokenizer))]


def write_pos_lexicon(wordnet_dir: Path, entry: Path) -> dict[str, str]:
    """Build the lexicon for the zoo entry in folder `entry` (from its tokenizer.json) and write pos_lexicon.json."""
    tok = Tokenizer.from_file(str(entry / "tokenizer.json"))
    vocab = [tok.decode([i]) for i in range(tok.get_vocab_size())]
    lexicon = build_pos_lexicon(wordnet_dir, vocab)
    (entry / "pos_lexicon.json").write_text(json.dumps(lexicon, indent=0, sort_keys=True) + "\n")
    header = [re.sub(r"^\s*\d+ ?", "", line).rstrip() for line in
              (wordnet_dir / "index.noun").read_text(errors="replace").splitlines() if line.startswith(" ")]
    (entry / "WORDNET_LICENSE.txt").write_text(
        "pos_lexicon.json is derived from WordNet 3.0 (Debian package wordnet-base). Its license:\n\n"
        + "\n".join(header).strip() + "\n")
    return lexicon


def main() -> None:  # pragma: no cover - rebuilds the shipped lexicon from the Debian package
    cache = Path(".mechinterp-cache/debian")
    fetch_packages(cache)
    lexicon = write_pos_lexicon(cache / "root/usr/share/wordnet", zoo_dir() / "text-lm")
    print(f"{len(lexicon)} entries:", Counter(lexicon.values()))


if __name__ == "__main__":
    main()
