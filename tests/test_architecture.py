"""The layers of the design, checked on the sources: web and worker over the domain,
the domain plain Python over one store, and only the store knows the Redis keys.

The import rules are import-linter contracts in setup.cfg; this runs them, so
`make test` fails with import-linter's report when an import crosses a layer.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
# Spelt in two parts so that this file does not match its own rule.
KEY_PREFIX = "qs" + ":"
SCANNED = ("queue_service", "web", "worker", "tests", "bench")


def test_the_import_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), "import-linter is missing: pip install -e '.[test]' (make test does)"
    # The packages of this checkout first, whatever else PYTHONPATH holds.
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    completed = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo", "setup.cfg"],
        cwd=ROOT, env=os.environ | {"PYTHONPATH": os.pathsep.join(paths)},
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "0 broken" in completed.stdout, completed.stdout  # the contracts were read and checked


def test_the_domain_imports_no_flask_extension_at_all():
    """What the contract cannot say with a wildcard: no flask_* module, named or not."""
    found = []
    for path in sorted((ROOT / "queue_service").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {name}" for name in names if name.startswith("flask")]
    assert found == []


# What the web app may take from worker.jobs (the import-linter contract lets web.staff_actions
# import it): the admin's "run a draw now". Messages are the outbox's business.
WEB_MAY_TAKE_FROM_JOBS = {"start_draw_now"}


def names_imported_from(module: str, folder: Path) -> list[str]:
    """`file:line: name` for each name that the sources under `folder` import from `module`
    ("*" where they import the module itself, which gives every name)."""
    package, _, last = module.rpartition(".")
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == module:
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == package:
                names = ["*" for alias in node.names if alias.name == last]
            elif isinstance(node, ast.Import):
                names = ["*" for alias in node.names if alias.name == module]
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {name}" for name in names]
    return found


def test_the_web_app_takes_no_enqueue_helper_from_the_jobs():
    """What the contract's exception for web.staff_actions cannot say: which names it imports."""
    taken = names_imported_from("worker.jobs", ROOT / "web")
    assert taken and [line for line in taken if line.rpartition(": ")[2] not in WEB_MAY_TAKE_FROM_JOBS] == []


def outside_the_store(root: Path) -> list[Path]:
    """The Python sources of the scanned folders, less the store (a module or a package)."""
    store = root / "queue_service" / "store"
    sources = sorted(path for folder in SCANNED for path in (root / folder).rglob("*.py"))
    return [path for path in sources if path != store.with_suffix(".py") and store not in path.parents]


def key_literals(root: Path, path: Path) -> list[str]:
    """`file:line: source line` for each line holding a str or bytes literal, or an
    f-string part, that begins with the key prefix."""
    source = path.read_bytes()
    prefix = {str: KEY_PREFIX, bytes: KEY_PREFIX.encode()}
    lines = sorted({
        node.lineno
        for node in ast.walk(ast.parse(source, filename=str(path)))
        if isinstance(node, ast.Constant) and type(node.value) in prefix
        and node.value.startswith(prefix[type(node.value)])
    })
    text = source.decode().splitlines()
    return [f"{path.relative_to(root)}:{line}: {text[line - 1].strip()}" for line in lines]


def test_the_key_scan_reads_f_strings_and_bytes_and_skips_only_the_store(tmp_path):
    for name in ("queue_service/store.py", "queue_service/store/keys.py", "queue_service/pools.py", "tests/t.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text('KEY = "qs:pools"\n')
    assert outside_the_store(tmp_path) == [tmp_path / "queue_service/pools.py", tmp_path / "tests/t.py"]
    sample = tmp_path / "sample.py"
    sample.write_text('pool = "01:renewal"\nKEY = f"qs:{{{pool}}}:waiting"\nOTHER = b"qs:pools"\nNOTE = "a qs: key"\n')
    assert key_literals(tmp_path, sample) == [
        'sample.py:2: KEY = f"qs:{{{pool}}}:waiting"',
        'sample.py:3: OTHER = b"qs:pools"',
    ]


def test_only_the_store_spells_redis_keys():
    found = [line for path in outside_the_store(ROOT) for line in key_literals(ROOT, path)]
    assert found == [], "Redis keys spelt outside queue_service/store (use its key templates):\n" + "\n".join(found)


# A Redis command in a script, and its first argument (the key, for every command the scripts use).
_SCRIPT_CALL = re.compile(r"redis\.p?call\(\s*(['\"])(\w+)\1\s*,")
_LOCAL = re.compile(r"local\s+([\w\s,]+?)\s*=\s*([^\n]+)")


def _first_argument(text: str, start: int) -> str:
    depth, index = 0, start
    while index < len(text) and not (depth == 0 and text[index] in ",)"):
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(text[index], 0)
        index += 1
    return text[start:index].strip()


def test_every_key_a_script_touches_comes_in_KEYS():
    """A script builds no key name (a prefix joined to an id, a name from ARGV): each key is
    passed in KEYS, so that Redis Cluster routes the call by them and its slot check sees
    them all (docs/operations.md, "Several machines"). A local variable counts as what it
    was set to."""
    built = []
    for path in sorted((ROOT / "queue_service" / "store" / "scripts").glob("*.lua")):
        text = path.read_text(encoding="utf-8")
        bound = {}
        for names, value in _LOCAL.findall(text):
            for name, part in zip((n.strip() for n in names.split(",")), value.split(",")):
                bound.setdefault(name, part)
        for call in _SCRIPT_CALL.finditer(text):
            key = _first_argument(text, call.end())
            meaning = bound.get(key, key)
            if ".." in meaning or "ARGV" in meaning:
                built.append(f"{path.name}: {call.group(2)} {key}")
    assert built == []
