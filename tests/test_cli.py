"""st-gp convert / verify: the report, exit codes, one-line errors, help for every option."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from sentence_transformers.sentence_transformer.modules import Pooling

from st_generalized_pooling import convert, save_model
from st_generalized_pooling.cli import build_parser, main


@pytest.fixture(scope="module")
def base_dir(distil_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "base"
    distil_model.save(str(path))
    return path


def test_convert_prints_the_report_and_saves_a_loadable_model(base_dir, tmp_path, capsys):
    assert main(["convert", str(base_dir), str(tmp_path / "out"), "--num-heads", "4"]) == 0
    out = capsys.readouterr().out
    assert "max |diff|:" in out and "min cosine:" in out and "pooling params:" in out
    assert float(out.split("max |diff|:")[1].split()[0]) <= 1e-6
    assert main(["verify", str(tmp_path / "out"), "--base", str(base_dir)]) == 0
    assert "equivalent within 1e-06" in capsys.readouterr().out


def test_verify_fails_when_the_models_differ(distil_model, base_dir, bert_model, tmp_path, capsys):
    drifted = convert(distil_model, num_heads=4)
    with torch.no_grad():
        drifted[1].w2.normal_()
    save_model(drifted, tmp_path / "drifted")
    assert main(["verify", str(tmp_path / "drifted"), "--base", str(base_dir)]) == 1
    assert "NOT equivalent" in capsys.readouterr().out
    bert_model.save(str(tmp_path / "other"))  # 32-d, where the distiluse-like base is 16-d
    assert main(["verify", str(tmp_path / "other"), "--base", str(base_dir)]) == 2
    assert "different sizes (16 vs 32)" in capsys.readouterr().err


def test_errors_are_one_line_and_exit_2(distil_model, base_dir, tmp_path, capsys):
    cls_model = copy.deepcopy(distil_model)
    cls_model._modules["1"] = Pooling(32, pooling_mode="cls")
    cls_model.save(str(tmp_path / "cls"))
    capsys.readouterr()
    assert main(["convert", str(tmp_path / "cls"), str(tmp_path / "out")]) == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(error_lines) == 1 and error_lines[0].startswith("st-gp convert: error: ")
    assert "pools with 'cls'" in error_lines[0]
    assert not (tmp_path / "out").exists()

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    assert main(["convert", str(base_dir), str(tmp_path / "busy")]) == 2
    assert "not empty" in capsys.readouterr().err

    assert main(["convert", str(base_dir), str(tmp_path / "x"), "--num-heads", "5"]) == 2
    assert "not divisible by num_heads 5" in capsys.readouterr().err


def test_console_script_reports_a_missing_model_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "st_generalized_pooling.cli", "convert", str(tmp_path / "nope"), str(tmp_path / "o")],
        capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PATH": ""},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "st-gp convert: error:" in result.stderr


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, subparser in subparsers.choices.items():
        for action in subparser._actions:
            assert action.help, f"st-gp {name} {action.option_strings or action.dest} has no help"
