"""The quote store itself: every quote loads, names a full commit and a file, and parses where it is parsed."""

import json

import pytest

from tina_sweep.trial.datasets import bundled_path
from tina_sweep.trial.tina_source import Quote, _load, quotes


def test_every_quote_names_a_full_commit_a_file_and_a_line():
    for item in quotes().values():
        assert len(item.commit) == 40 and item.file and not item.file.startswith("/") and item.first_line >= 1
        assert item.text == item.text.rstrip("\n"), f"{item.key}: text must not end with a newline"


def test_python_literals_evaluate_as_python_would():
    item = Quote("k", "0" * 40, "tina/x.py", 3, 'NAME = """\na\\nb\n"""')
    assert item.python_value() == "\na\nb\n"  # the escape is a real newline, as in Python
    assert item.last_line == 5 and item.where == "tina/x.py:3-5 @ 0000000"


def test_yaml_quotes_parse():
    assert Quote("k", "0" * 40, "r.yaml", 1, "learning_rate: 1.0e-06\nlora_r: 32").yaml_value() == {
        "learning_rate": 1e-06, "lora_r": 32}


def test_malformed_quotes_are_refused():
    with pytest.raises(ValueError, match="commit must be 40 hex"):
        _load("x.json", [{"key": "a", "commit": "077329b", "file": "f", "first_line": 1, "text": "t"}])
    with pytest.raises(ValueError, match="appears twice"):
        entry = {"key": "a", "commit": "0" * 40, "file": "f", "first_line": 1, "text": "t"}
        _load("x.json", [entry, entry])


def test_quote_files_are_lists_of_quotes():
    for path in bundled_path("reference/tina_source").glob("*.json"):
        assert isinstance(json.loads(path.read_text()), list), path.name
