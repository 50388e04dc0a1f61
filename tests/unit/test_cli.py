"""The CLI's own input handling: config building, clear errors and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from snakedeck import cli


def test_set_values_parse_as_yaml_scalars_and_nest() -> None:
    config = cli.build_config(None, ["samples=3", "sleep=0.5", "name=x", "a.b=true", "empty="])
    assert config == {"samples": 3, "sleep": 0.5, "name": "x", "a": {"b": True}, "empty": ""}


def test_set_overrides_config_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("samples: 2\ngreeting: hi\n")
    assert cli.build_config(f, ["samples=5"]) == {"samples": 5, "greeting": "hi"}


@pytest.mark.parametrize(
    ("content", "message"),
    [("- a\n- b\n", "must hold a mapping"), ("a: [unclosed\n", "not valid YAML")],
)
def test_bad_config_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(content)
    with pytest.raises(cli.UsageError, match=message):
        cli.build_config(f, [])


def test_missing_config_file_exits_2_with_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    code = cli.main(
        ["submit", "demo", "--config-file", str(missing), "--url", "http://127.0.0.1:9"]
    )
    assert code == cli.EXIT_USAGE
    assert str(missing) in capsys.readouterr().err


def test_malformed_pair_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["submit", "demo", "--set", "novalue", "--url", "http://127.0.0.1:9"])
    assert code == cli.EXIT_USAGE
    assert "'novalue' must look like KEY=VALUE" in capsys.readouterr().err


def test_unreachable_gateway_exits_3_and_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["runs", "--url", "http://127.0.0.1:9"])
    assert code == cli.EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert "http://127.0.0.1:9" in err and "snakedeck standalone" in err


def test_replay_of_missing_spool_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["replay", str(tmp_path / "x.jsonl")]) == cli.EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
