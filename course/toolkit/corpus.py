"""Real English text that installs offline, for the zoo's `text-lm`.

Sources are Debian packages, fetched with `apt-get download` and unpacked with `dpkg-deb -x` (no install,
no root needed beyond what apt-get download needs); nothing comes from a model or dataset hub.

- `sword-text-web`: the World English Bible (public domain), a SWORD zText module (zlib blocks + OSIS markup);
- `wordnet-base`: WordNet 3.0 glosses and example sentences (WordNet 3.0 license, permissive);
- `fortunes`, `fortunes-min`: the fortune-cookie files (quotations and jokes; Debian: BSD-style/public domain).
"""

from __future__ import annotations

import hashlib
import html
import re
import struct
import subprocess
import zlib
from pathlib import Path

PACKAGES = ("sword-text-web", "wordnet-base", "fortunes", "fortunes-min")
DOC_SEPARATOR = "<|endoftext|>"


def fetch_packages(cache: Path) -> dict[str, str]:
    """Download and unpack the Debian packages into `cache`; returns {deb file name: sha256}."""
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob("*.deb"))
    if len(debs) < len(PACKAGES):
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=cache, check=True, capture_output=True)
        debs = sorted(cache.glob("*.deb"))
    root = cache / "root"
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return {deb.name: hashlib.sha256(deb.read_bytes()).hexdigest() for deb in debs}


def _sword_ztext(module_dir: Path) -> list[str]:
    """Decode a SWORD zText module into one document per chapter-sized block of plain text."""
    docs = []
    for testament in ("ot", "nt"):
        index = (module_dir / f"{testament}.bzs").read_bytes()
        data = (module_dir / f"{testament}.bzz").read_bytes()
        for i in range(0, len(index), 12):
            offset, size, _ = struct.unpack("<III", index[i : i + 12])
            if size:
                docs.append(zlib.decompress(data[offset : offset + size]).decode("utf-8", "replace"))
    text = "".join(docs)
    text = re.sub(r"<note\b.*?</note>", " ", text, flags=re.S)  # footnotes and cross-references
    text = re.sub(r"<title\b[^>]*>(.*?)</title>", r"\n\n\1\n\n", text, flags=re.S)
    text = re.sub(r"<div [^>]*eID[^>]*/>", "\n", text)  # paragraph ends
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text).replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    text = text.replace("\u201d", '"').replace("\u2014", " - ")
    paragraphs = [re.sub(r"[ \t]+", " ", p).strip() for p in re.split(r"\n\s*\n|\n", text)]
    paragraphs = [p for p in paragraphs if len(p) > 20]
    # documents of ~2,000 characters of consecutive paragraphs
    out, current = [], ""
    for p in paragraphs:
        current = f"{current}\n{p}" if current else p
        if len(current) > 2000:
            out.append(current)
            current = ""
    return out + ([current] if current else [])


def _wordnet(dict_dir: Path) -> list[str]:
    """Glosses and quoted example sentences from WordNet's data.* files, grouped into documents."""
    lines = []
    for pos in ("noun", "verb", "adj", "adv"):
        for row in (dict_dir / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if row.startswith(" ") or "|" not in row:
                continue
            words = row.split()[4 : 4 + 2 * int(row.split()[3], 16) : 2]
            gloss = row.split("|", 1)[1].strip()
            head = words[0].replace("_", " ") if words else ""
            lines.append(f"{head}: {gloss}")
    return ["\n".join(lines[i : i + 25]) for i in range(0, len(lines), 25)]


def _fortunes(games_dir: Path) -> list[str]:
    docs = []
    for path in sorted(games_dir.glob("*")):
        if path.is_file() and not path.suffix and "off" not in path.parts:
            entries = path.read_text(encoding="utf-8", errors="replace").split("\n%\n")
            entries = [e.strip() for e in entries if 20 < len(e.strip()) < 2000]
            docs.extend("\n\n".join(entries[i : i + 5]) for i in range(0, len(entries), 5))
    return docs


def build_corpus(cache: Path) -> tuple[list[str], dict[str, str]]:
    """All documents (a list of strings) and the package checksums they came from."""
    checksums = fetch_packages(cache)
    root = cache / "root" / "usr" / "share"
    docs = _sword_ztext(root / "sword" / "modules" / "texts" / "ztext" / "engWEB2015eb")
    docs += _wordnet(root / "wordnet")
    docs += _fortunes(root / "games" / "fortunes")
    return docs, checksums
