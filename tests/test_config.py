"""config.example.toml stays true to the code; precedence file < env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from vtn.config import Config, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def test_example_file_holds_the_defaults_and_documents_every_key() -> None:
    assert load_config(EXAMPLE) == Config()
    text = EXAMPLE.read_text()
    for name, field in Config.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            assert f"[{name}]" in text
            for key in annotation.model_fields:
                assert f"{key} =" in text, f"{name}.{key} undocumented"
        else:
            assert f"{name} =" in text, f"{name} undocumented"


def test_env_beats_file_and_flags_beat_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "vtn.toml"
    cfg.write_text('vtn_id = "from-file"\n[http]\nport = 9001\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("VTN_HTTP_PORT", "9002")
    monkeypatch.setenv("VTN_STORE_URL", "sqlite:///tmp/x.sqlite3")
    c = load_config(cfg)
    assert (c.vtn_id, c.http.port, c.http.host) == ("from-file", 9002, "0.0.0.0")
    assert c.sqlite_path == Path("/tmp/x.sqlite3")
    c = load_config(cfg, **{"http.port": 9003, "data_dir": tmp_path})
    assert (c.http.port, c.http.host, c.data_dir) == (9003, "0.0.0.0", tmp_path)


def test_invalid_values_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[liveness]\nstale_after_polls = -1\n")
    with pytest.raises(ValueError):
        load_config(cfg)
    cfg.write_text("[http]\nprot = 1\n")
    with pytest.raises(ValueError):
        load_config(cfg)
