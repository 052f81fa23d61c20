"""Look-alike letters folded to one skeleton, for the duplicate key of a person.

Why this module exists
----------------------
A bot that wants several places in one lottery registers one person several
times, each time under a name that looks the same but is spelt with other
characters: the Cyrillic а (U+0430) for the Latin a, the Cyrillic і (U+0456)
for i, fullwidth letters, a Greek capital... Unicode Technical Standard #39
(Security Mechanisms, section 4) lists these look-alikes in confusables.txt:
each character that may be taken for another is mapped to a *prototype*, and
two strings whose characters, each replaced by its prototype, are equal (the
same *skeleton*) are confusable. ``word_skeleton`` folds one word of a name
that way, blind to case and accents as well, so that
``identity.identity_fingerprint`` gives every disguise of one name one key.
It is a key, never a spelling to show: "Martin" folds to "rnartin".

The data
--------
The Unicode data comes from the package confusable-homoglyphs (MIT licence),
read on first use: ``confusables.json``, built by the package from
confusables.txt, and ``categories.json``, built from Scripts.txt. Its
confusables.json does not keep TS #39's direction: for each character it
lists the characters a line of confusables.txt links it to, both ways. Each
line links one character to its prototype, so the characters linked together
form one star per prototype, the prototype at the centre, linked to all the
others. ``_read_classes`` finds that centre: the member linked to every other;
in a class of two, the one written with several characters ("rn" for "m").
In a class of two single characters the file does not say which is the
prototype; either serves, since both fold to the same one (the lower code
point is taken). A character in no class is its own prototype.

The fold of a word
------------------
1. NFD; accents (combining marks of no script of their own), the optional
   vowel points of Arabic, Hebrew and Syriac, joiners, apostrophes and
   apostrophe-like letters (ʼ, ʻ), full stops and the tatweel are dropped.
   The vowel signs of Indic and other scripts are kept: they are part of the
   letter there (``_strip``).
2. A letter of another script than most of the name's letters becomes the
   letter of the name's script that looks like it, in the same case: the
   Cyrillic а of "Mаrtin" is the Latin a, the Greek Ν of "ΝGUYEN" the Latin N,
   the Latin r of "Иrина" the Cyrillic г (``_in_script``; the name is the
   family name, or the given names, all their words together).
3. Case-folded, NFKD (fullwidth and mathematical letters), each character
   replaced by its prototype, until nothing changes.

Case and look-alikes do not commute: TS #39 is case-sensitive, and a key
must fold "ИВАН" with "Иван". Two joins of classes make them agree where
names need it. A small capital of a Latin letter is that letter (ʙ is b, ᴍ
is m): the Cyrillic в, listed with ʙ, is then b like its capital В, and a
name wholly in Cyrillic capitals that read as Latin ("КОСН") folds with
"Koch". Capitals listed together whose small letters are apart have their
small letters joined (Ð and Đ, so ð and đ; З and Ӡ), unless one of them is
with an ASCII letter (Β and B, but β is with ß: ß is not b).

What is not folded, by choice (docs/registration.md, "Identity matching"):
the capital I and the small l (to fold them, "Ali" would become "All", or
"ALI" and "Ali" two keys); the long s ſ, an s by Unicode's case folding
though TS #39 lists it with f; Ꞵ, Ʝ and Ꭓ, Latin capitals listed with B, J
and X whose small letters are listed elsewhere; digits (names hold none).
A name written mostly in Greek letters is read as Greek, and Ν, Η, Β, Ε...
then are Greek letters, not N, H, B, E. What TS #39 folds and we keep: "m"
and "rn" (one prototype).
"""

from __future__ import annotations

import bisect
import collections
import functools
import hashlib
import json
import string
import unicodedata
from dataclasses import dataclass
from importlib import resources

__all__ = ["word_skeleton", "main_script", "letter_script", "look_alikes", "data_digest"]

# The package that ships the Unicode data, and its two files.
_DATA_PACKAGE = "confusable_homoglyphs"
_CONFUSABLES_FILE = "confusables.json"
_SCRIPTS_FILE = "categories.json"
# The package writes right-to-left characters between LEFT-TO-RIGHT MARKs
# (as confusables.txt's comments do): they are not part of the character.
_DIRECTION_MARKS = str.maketrans("", "", "\u200e\u200f")
# Scripts that are not a script of their own (punctuation, combining marks).
_NO_SCRIPT = frozenset({"COMMON", "INHERITED"})
# Scripts whose vowel marks are optional pointing, left out by most writers.
_POINTED_SCRIPTS = frozenset({"ARABIC", "HEBREW", "SYRIAC"})
# The Greek iota subscript: a combining mark in NFD, a letter once case-folded.
_YPOGEGRAMMENI = "\u0345"
# Letters (Lm) that are not part of a name's spelling: the Arabic tatweel
# only stretches a word; U+02BC is the apostrophe of Ukrainian keyboards;
# U+0674, the Arabic high hamza, is what TS #39 makes of a hamza above, a
# vowel point (dropped as such: أحمد and احمد are one name).
_DROPPED_LETTERS = frozenset("\u0640\u02bc\u0674")
# Letter categories -> the case a look-alike must have: a capital looks like
# a capital, a small letter like a small letter.
_CASES = {"Lu": "Lu", "Lt": "Lu", "Ll": "Ll", "Lo": "Lo"}
# A word folded this many times without settling is taken as it is (none
# known needs more than two; the bound keeps any text from looping).
_MAX_ROUNDS = 8


@dataclass(frozen=True)
class _Tables:
    # Character -> its prototype (one or more characters), for every
    # character that is not its own prototype.
    prototype: dict[str, str]
    # Character -> the single characters of its class, itself included.
    members: dict[str, tuple[str, ...]]
    # Letters dropped like punctuation: apostrophe-like modifier letters.
    dropped: frozenset[str]


def _read(name: str) -> bytes:
    # The package's own files, read directly: its loader would follow the
    # CONFUSABLE_DATA environment variable, and a key must not depend on it.
    return resources.files(_DATA_PACKAGE).joinpath(name).read_bytes()


def data_digest() -> str:
    """SHA-256 (hex) of the confusables data in use.

    Another version of the data may fold some characters differently, which
    changes the keys of people already registered: ``qs migrate-identity``
    recomputes them (docs/operations.md).
    """
    return hashlib.sha256(_read(_CONFUSABLES_FILE)).hexdigest()


@functools.cache
def _scripts() -> tuple[list[int], list[int], list[str]]:
    """Scripts.txt as sorted ranges: (first code points, last code points, script names)."""
    data = json.loads(_read(_SCRIPTS_FILE))
    names = data["iso_15924_aliases"]
    ranges = sorted(data["code_points_ranges"])
    return [r[0] for r in ranges], [r[1] for r in ranges], [names[r[2]] for r in ranges]


@functools.lru_cache(maxsize=8192)
def _script(char: str) -> str:
    firsts, lasts, names = _scripts()
    index = bisect.bisect_right(firsts, ord(char)) - 1
    if index >= 0 and ord(char) <= lasts[index]:
        return names[index]
    return "UNKNOWN"


def _read_classes() -> dict[str, str]:
    """Character -> prototype, from the package's two-way lists (see the module's docstring)."""
    raw = json.loads(_read(_CONFUSABLES_FILE))
    linked: dict[str, set[str]] = {}
    for text, entries in raw.items():
        text = text.translate(_DIRECTION_MARKS)
        for entry in entries:
            other = entry["c"].translate(_DIRECTION_MARKS)
            linked.setdefault(text, set()).add(other)
            linked.setdefault(other, set()).add(text)
    prototype: dict[str, str] = {}
    placed: set[str] = set()
    for start in sorted(linked):
        if start in placed:
            continue
        members, todo = {start}, [start]
        while todo:
            for other in linked[todo.pop()]:
                if other not in members:
                    members.add(other)
                    todo.append(other)
        placed |= members
        centres = sorted(m for m in members if linked[m] >= members - {m})
        several = sorted(m for m in members if len(m) > 1)
        if len(members) > 2 and len(centres) == 1:
            centre = centres[0]
        elif len(members) == 2 and len(several) == 1:
            centre = several[0]
        elif len(members) == 2 and not several:
            centre = min(members)
        else:  # not a star: the data is not what this module was written for
            raise ValueError(f"unexpected confusables class: {sorted(members)!r}")
        for member in members - {centre}:
            if len(member) != 1:
                raise ValueError(f"unexpected confusables source: {member!r}")
            prototype[member] = centre
    return prototype


def _holds_ascii_letter(centre: str, members: dict[str, list[str]]) -> bool:
    return centre.isascii() and centre.isalpha() or any(m.isascii() and m.isalpha() for m in members.get(centre, ()))


def _by_centre(prototype: dict[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for source, centre in prototype.items():
        groups.setdefault(centre, [centre] if len(centre) == 1 else []).append(source)
    return groups


def _join(prototype: dict[str, str], joins: dict[str, str]) -> dict[str, str]:
    """The classes whose prototype is a key of `joins` put in the class of its value."""
    def final(centre: str) -> str:
        seen = set()
        while centre in joins and centre not in seen:
            seen.add(centre)
            centre = joins[centre]
        return centre

    joined = {source: final(centre) for source, centre in prototype.items()}
    # A joined prototype of one character is now a member of the class it joins.
    joined.update({centre: final(centre) for centre in joins if len(centre) == 1 and final(centre) != centre})
    return joined


def _small_capital_joins(prototype: dict[str, str]) -> dict[str, str]:
    """Each class holding the small capital of a Latin letter (ʙ, ᴍ, ᴋ...) joins the
    class of that letter, unless TS #39 has put it with another ASCII letter already."""
    joins = {}
    for letter in string.ascii_lowercase:
        try:
            small_capital = unicodedata.lookup(f"LATIN LETTER SMALL CAPITAL {letter.upper()}")
        except KeyError:
            continue
        centre = prototype.get(small_capital, small_capital)
        if not (centre.isascii() and centre.isalpha()):
            joins[centre] = prototype.get(letter, letter)
    return joins


def _capital_joins(prototype: dict[str, str]) -> dict[str, str]:
    """Capitals that TS #39 puts in one class (Ð and Đ; З and Ӡ) while their small
    letters are apart (ð, đ; з, ӡ): the small letters' classes are joined, unless one
    of them holds an ASCII letter (Β and B stay apart by their small letters, β and b:
    else ß would be b)."""
    groups = _by_centre(prototype)
    joins: dict[str, str] = {}
    for members in groups.values():
        smalls = set()
        for capital in members:
            small = capital.lower()
            if unicodedata.category(capital) in ("Lu", "Lt") and len(small) == 1 and small != capital:
                smalls.add(prototype.get(small, small))
        if len(smalls) > 1 and not any(_holds_ascii_letter(centre, groups) for centre in smalls):
            target = min(smalls)
            joins.update({centre: target for centre in smalls if centre != target})
    return joins


def _is_punctuation(text: str) -> bool:
    return all(unicodedata.category(char)[0] in "PZCM" for char in unicodedata.normalize("NFD", text))


@functools.cache
def _tables() -> _Tables:
    prototype = _read_classes()
    prototype = _join(prototype, _small_capital_joins(prototype))
    prototype = _join(prototype, _capital_joins(prototype))
    # A letter whose prototype is only punctuation would vanish from the key: a
    # modifier letter (ʻ, ʾ, ʹ) is an apostrophe, dropped like one; another letter
    # (the Hebrew yod, "'"; the katakana ノ, "/") stays itself.
    dropped = frozenset(
        source for source, centre in prototype.items()
        if unicodedata.category(source) == "Lm" and _is_punctuation(centre)
    )
    prototype = {
        source: centre
        for source, centre in prototype.items()
        if not (unicodedata.category(source).startswith("L") and _is_punctuation(centre))
    }
    members = {member: tuple(sorted(group)) for group in _by_centre(prototype).values() for member in group}
    return _Tables(prototype=prototype, members=members, dropped=dropped | _DROPPED_LETTERS)


def look_alikes(char: str) -> tuple[str, ...]:
    """The characters folded with `char` (its class, itself included; its
    prototype if that is one character), or () if it has none."""
    return _tables().members.get(char, ())


def _strip(text: str, form: str = "NFD") -> str:
    """Decomposed (NFD, or NFKD), without accents, punctuation, spaces,
    controls, joiners and tatweel.

    A combining mark is kept where it is part of a letter: a vowel sign of an
    Indic script (Tamil, Bengali, Devanagari...), Thai... on a letter of its
    own script, or on none (a word cut before it: "க ி" is "கி" cut in two).
    Accents (marks of no script of their own, U+0300...) and the optional
    vowel points of Arabic, Hebrew and Syriac are dropped, and so is any mark
    on a letter of another script (a bot's decoration).
    """
    kept: list[str] = []
    base_script = None
    for char in unicodedata.normalize(form, text):
        if char == _YPOGEGRAMMENI:
            char = "ι"  # the iota it stands for ("ᾳ".casefold() is "αι")
        kind = unicodedata.category(char)
        if kind[0] == "M":
            script = _script(char)
            if script not in _NO_SCRIPT | _POINTED_SCRIPTS and base_script in (None, script):
                kept.append(char)
        elif kind == "Cf":
            continue  # joiners: invisible, and not between a letter and its vowel sign
        elif kind[0] in "PZC" or char in _tables().dropped:
            base_script = None
        else:
            kept.append(char)
            base_script = _script(char)
    return "".join(kept)


def letter_script(char: str) -> str:
    """The script of a character; a mathematical or letterlike letter (𝐌, ℳ),
    of no script, counts as the letter it decomposes to (Latin)."""
    script = _script(char)
    if script == "COMMON" and char.isalpha():
        return _script(unicodedata.normalize("NFKD", char)[0])
    return script


def main_script(text: str) -> str:
    """The script most letters of `text` are written in (𝐌 counting as Latin):
    Latin on a tie, or when no letter has a script."""
    counts = collections.Counter(script for script in map(letter_script, text) if script not in _NO_SCRIPT)
    if not counts:
        return "LATIN"
    most = max(counts.values())
    tied = sorted(script for script, count in counts.items() if count == most)
    return "LATIN" if "LATIN" in tied else tied[0]


@functools.lru_cache(maxsize=4096)
def _look_alike_in(char: str, script: str) -> str | None:
    """The letter of `script`, of the same case, that looks like `char` (ASCII first), or None."""
    wanted = _CASES.get(unicodedata.category(char))
    if wanted is None:
        return None
    found = sorted(
        (
            member
            for member in look_alikes(char)
            if _script(member) == script and unicodedata.category(member) == wanted
        ),
        key=lambda member: (not member.isascii(), member),
    )
    return found[0] if found else None


def _in_script(text: str, script: str) -> str:
    """Each letter of another script replaced by the letter of `script` that looks like
    it, in the same case, if there is one. Letters of no script (mathematical 𝐌,
    letterlike ℳ) too: 𝚴 is a Greek Ν once decomposed, but it is listed with N."""
    return "".join(
        (_look_alike_in(char, script) or char) if char.isalpha() and _script(char) != script else char
        for char in text
    )


def _replace(text: str, table: dict[str, str]) -> str:
    # The marks left by _strip are vowel signs, part of their letter: TS #39
    # would fold some into accents (the Tamil virama into a dot above).
    return "".join(char if unicodedata.category(char)[0] == "M" else table.get(char, char) for char in text)


def _fold_once(word: str, script: str) -> str:
    prototype = _tables().prototype
    # NFD, not NFKD, until the letters are in the name's script: the
    # compatibility form of a letter may look otherwise (Ϲ, lunate sigma,
    # looks like C and is listed so, but its NFKD is Σ). Before dropping
    # marks: a vowel sign stays on the letter made of its own script.
    text = _strip(_in_script(unicodedata.normalize("NFD", word), script))
    for _ in range(_MAX_ROUNDS):
        # NFKD before case-folding too: 𝐈 (mathematical) is I only once decomposed.
        folded = _strip(_replace(_strip(_strip(text, "NFKD").casefold(), "NFKD"), prototype))
        if folded == text:
            break
        text = folded
    return text


@functools.lru_cache(maxsize=65536)
def word_skeleton(word: str, script: str | None = None) -> str:
    """The key of one word of a name: case, accents, look-alikes folded.

    "Martin", "MARTIN", "Mаrtіn" (Cyrillic а and і) and "Ｍａｒｔｉｎ" give one
    key; so do "Straße" and "STRASSE", "Cœur" and "COEUR", "ıstanbul" and
    "İstanbul". `script` is the script of the name the word belongs to
    (:func:`main_script`; the word's own if None): its letters of other
    scripts are read as the look-alikes in that one. Idempotent: the key of a
    key is itself. Apostrophes, full stops, joiners and accents inside the
    word are dropped; the caller splits the name into words at spaces and
    hyphens.
    """
    script = script or main_script(word)
    if script == "LATIN" and word.isascii() and (keys := _ascii_keys()) is not None:
        return "".join([keys[char] for char in word])
    return _folded(word, script)


def _folded(word: str, script: str) -> str:
    text = word
    for _ in range(_MAX_ROUNDS):
        folded = _fold_once(text, script)
        if folded == text:
            break
        text = folded
    return text


@functools.cache
def _ascii_keys() -> dict[str, str] | None:
    """The key of each ASCII character in a Latin name, folded alone; None if the
    table cannot stand for the full folding (then every word is folded in full).

    Every step of the folding maps an ASCII character on its own: casefold, the
    prototypes, dropping punctuation and controls. The only step that reads a
    neighbour keeps or drops a combining mark by the letter before it, and no
    ASCII character's key may have a mark (checked here). So the key of an ASCII
    word is its characters' keys put together, with no Unicode normalisation or
    category per letter: 1.4 µs for a word of 16 letters, where the full folding
    takes 50 µs (issue 19: a new name's words are not in word_skeleton's cache).
    tests/test_identity.py compares the two ways on every pair of ASCII
    characters and on random words."""
    keys = {char: _folded(char, "LATIN") for char in map(chr, range(128))}
    if any(unicodedata.category(part)[0] == "M" for key in keys.values() for part in key):
        return None
    return keys
